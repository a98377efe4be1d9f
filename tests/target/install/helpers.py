"""Small packages and roots for fast install tests (the real kernel has its own tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from distkernel.build.package.format import Metadata
from distkernel.build.package.writer import Member, write_package
from distkernel.target.install import State, load_state
from distkernel.target.install.changes import check_root
from tests.build.package.images import fake_image

CONFIG = b"CONFIG_MODULES=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_BINFMT_SCRIPT=y\nCONFIG_DEVTMPFS=y\n"


def fake_package(out: Path, release: str = "6.1.0-fake", *, image: bytes | None = None) -> Path:
    """A well-formed package: a stand-in image, no .ko (depmod runs on empty trees), headers."""
    members = [
        Member("kernel/vmlinuz", data=image or fake_image("x86_64", release)),
        Member("kernel/System.map", data=b"ffffffff81000000 T _text\n"),
        Member("kernel/config", data=CONFIG),
        Member("modules/modules.order", data=b""),
        Member("modules/modules.builtin", data=b"kernel/fs/ext4/ext4.ko\n"),
        Member("modules/modules.builtin.modinfo", data=b""),
        Member("headers/Makefile", data=b"# fake\n"),
        Member("headers/.config", data=CONFIG),
        Member("headers/include/linux/fake.h", data=b"#define FAKE 1\n"),
        Member("headers/include/asm", link="linux"),
    ]
    meta = Metadata(
        name="fake",
        variant="",
        kernel_release=release,
        version="6.1.0",
        arch="x86_64",
        recipe_sha256="0" * 64,
        config_sha256="0" * 64,
        source={"origin": "test"},
        toolchain={},
        build_date=0,
        sizes={},
        image="kernel/vmlinuz",
    )
    return write_package(out, meta, members)


def make_root(path: Path, *, merged_usr: bool = True, machine_id: str = "0123456789abcdef0123456789abcdef") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "etc").mkdir(exist_ok=True)
    (path / "etc/machine-id").write_text(machine_id + "\n")
    (path / "etc/os-release").write_text('ID=testos\nPRETTY_NAME="Test OS"\n')
    (path / "boot").mkdir(exist_ok=True)
    if merged_usr:
        (path / "usr/lib").mkdir(parents=True, exist_ok=True)
        os.symlink("usr/lib", path / "lib")
    return path


def shell_root(path: Path) -> Path:
    """A root that can run scripts: busybox as /bin/sh (hooks then run chrooted)."""
    make_root(path)
    (path / "usr/bin").mkdir(parents=True, exist_ok=True)
    os.symlink("usr/bin", path / "bin")
    shutil.copy("/bin/busybox", path / "usr/bin/busybox")
    for applet in ("sh", "echo", "cat", "env"):
        os.symlink("busybox", path / "usr/bin" / applet)
    return path


def consistent(root: Path) -> State:
    """Settle the root like the next command would, then check every recorded file."""
    state = load_state(root)
    problems = check_root(root, state)
    assert not problems, problems
    return state
