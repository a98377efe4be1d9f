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


def debian_tree(arch: Arch, packages: tuple[str, ...]) -> Path:
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


def populate_root(root: Path, arch: Arch, packages: tuple[str, ...]) -> None:
    """Give ROOT the target arch's PACKAGES (data/qemu.toml's root_packages: busybox-static,
    systemd-boot-efi where UEFI is tested); another arch only, a native root uses the host's."""
    if arch.native or not packages:
        return
    shutil.copytree(debian_tree(arch, packages), root, symlinks=True, dirs_exist_ok=True)
