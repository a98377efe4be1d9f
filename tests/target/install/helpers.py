"""Small packages and roots for fast install tests (the real kernel has its own tests)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from distkernel.build.package.format import METADATA, SIGNATURE, Manifest, Metadata, canonical_json
from distkernel.build.package.writer import Member, write_package
from distkernel.target.install import State, load_state
from distkernel.target.install.changes import check_root
from tests.build.package.images import fake_image

CONFIG = b"CONFIG_MODULES=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_BINFMT_SCRIPT=y\nCONFIG_DEVTMPFS=y\n"


def fake_package(out: Path, release: str = "6.1.0-fake", *, image: bytes | None = None, arch: str = "x86_64") -> Path:
    """A well-formed package for ARCH: a stand-in image, no .ko (depmod runs on empty
    trees), headers."""
    members = [
        Member("kernel/vmlinuz", data=image or fake_image(arch, release)),
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
        arch=arch,
        recipe_sha256="0" * 64,
        config_sha256="0" * 64,
        source={"origin": "test"},
        toolchain={},
        build_date=0,
        sizes={},
        image="kernel/vmlinuz",
    )
    out.mkdir(parents=True, exist_ok=True)
    return write_package(out, meta, members)


def with_release(package: Path, out: Path, release: str) -> Path:
    """PACKAGE re-packed with metadata naming RELEASE (see with_metadata)."""
    return with_metadata(package, out, kernel_release=release)


def with_metadata(package: Path, out: Path, sign: Callable[[bytes], bytes] | None = None, **fields: Any) -> Path:
    """PACKAGE re-packed with metadata FIELDS changed (manifest hash kept consistent, and
    signed again with SIGN when given), as a hostile builder would make it: the writer
    itself refuses such metadata."""
    with (
        open(package, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|") as t,
    ):
        members = [(i, t.extractfile(i).read() if i.isfile() else b"") for i in t]  # type: ignore[union-attr]
    doc = json.loads(members[0][1])
    doc.update(fields)
    meta = canonical_json(doc)
    manifest = dataclasses.replace(Manifest.from_bytes(members[1][1]), metadata_sha256=hashlib.sha256(meta).hexdigest())
    members[0] = (members[0][0], meta)
    members[1] = (members[1][0], manifest.to_bytes())
    if sign is not None:
        assert members[2][0].name == SIGNATURE, "sign only a package that was signed"
        members[2] = (members[2][0], sign(members[1][1]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    assert members[0][0].name == METADATA
    out.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return out


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
