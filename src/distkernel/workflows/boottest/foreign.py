"""The target arch's own userspace files for a boot test of another arch's kernel: the
scratch root gets them as that arch's root would have them (its static busybox for the
test initramfs, its systemd-boot and systemd-stub for UEFI), never the host's. They come
from Debian's archive for that arch (`apt-get download PKG:ARCH`), extracted once into
the user cache."""

from __future__ import annotations

import shutil
from pathlib import Path

from distkernel.core import cache
from distkernel.core.arch import Arch
from distkernel.core.errors import ToolError
from distkernel.core.tools import call, require

# What a scratch root of another arch gets: busybox-static for the builtin initramfs,
# systemd-boot-efi for the uki layout's stub and the ESP's boot loader.
ROOT_PACKAGES = ("busybox-static", "systemd-boot-efi")


def debian_tree(arch: Arch, packages: tuple[str, ...] = ROOT_PACKAGES) -> Path:
    """A folder holding PACKAGES for ARCH as `dpkg-deb -x` leaves them (cached)."""
    where = cache.cache_dir("foreign", arch.debian)
    tree = where / "tree"
    with cache.flocked(where / ".lock"):
        for pkg in packages:
            done = where / f"{pkg}.done"
            if done.exists():
                continue
            debs = where / "debs"
            debs.mkdir(exist_ok=True)
            require("apt-get")
            got = call(["apt-get", "download", f"{pkg}:{arch.debian}"], ok=None, cwd=debs, what="apt-get download")
            found = sorted(debs.glob(f"{pkg}_*_{arch.debian}.deb"))
            if got.code != 0 or not found:
                last = (got.output.strip().splitlines() or ["no output"])[-1]
                raise ToolError(
                    f"apt-get download {pkg}:{arch.debian} failed ({last}); "
                    f"enable the architecture: dpkg --add-architecture {arch.debian} && apt-get update"
                )
            tree.mkdir(exist_ok=True)
            call(["dpkg-deb", "-x", str(found[-1]), str(tree)], what="dpkg-deb -x")
            done.touch()
    return tree


def populate_root(root: Path, arch: Arch) -> None:
    """Give ROOT the target arch's busybox and systemd-boot files (another arch only: a
    native root's are the host's)."""
    if arch.native:
        return
    shutil.copytree(debian_tree(arch), root, symlinks=True, dirs_exist_ok=True)
