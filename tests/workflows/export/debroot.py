"""A small Debian root for the dpkg tests: `mmdebstrap --variant=minbase bookworm` with
what Debian's kernel packages need to run their maintainer scripts and hooks (kmod,
linux-base, initramfs-tools: its /etc/kernel hooks make and delete an initramfs) and
what the headers' host tools link. Made once, cached as a tarball under the user cache
dir; each test unpacks its own copy and runs commands chrooted into it, with /proc and
/dev mounted in a private mount namespace that ends with the command."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

from distkernel.core.cache import cache_dir, locked

SUITE = "bookworm"
INCLUDE = ("kmod", "linux-base", "initramfs-tools", "libelf1")


def root_tarball() -> Path:
    key = hashlib.sha256(f"{SUITE} minbase {','.join(INCLUDE)}".encode()).hexdigest()[:16]
    tarball = cache_dir("export-root") / f"{SUITE}-minbase-{key}.tar"
    with locked("export-root"):
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            subprocess.run(
                ["mmdebstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, partial],
                check=True,
                capture_output=True,
            )
            os.replace(partial, tarball)
    return tarball


def make_root(where: Path) -> Path:
    where.mkdir(parents=True)
    with tarfile.open(root_tarball()) as tar:
        tar.extractall(where, numeric_owner=True, filter="fully_trusted")
    return where


def in_root(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run COMMAND (sh) chrooted into ROOT, output captured."""
    setup = f"mount -t proc proc '{root}/proc' && mount --rbind /dev '{root}/dev' && exec chroot '{root}' sh -c \"$0\""
    return subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "sh", "-c", setup, command],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"},
    )
