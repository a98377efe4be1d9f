"""Hostile packages are refused before anything is written, with the same finding as
`distkernel verify` (both use the one package reader)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from distkernel.build.package.format import METADATA, FileEntry, Manifest, canonical_json
from distkernel.build.package.reader import PackageError, check_package
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import fake_package, make_root


def rebuild(good: Path, out: Path, edit_members, edit_manifest=None) -> Path:  # type: ignore[no-untyped-def]
    """Re-pack a good package with members changed by `edit_members(list)` (and the manifest)."""
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with (
        open(good, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|") as tar,
    ):
        for info in tar:
            data = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            members.append((info, data))
    manifest = Manifest.from_bytes(members[1][1])
    if edit_manifest:
        edit_manifest(manifest)
        members[1] = (members[1][0], manifest.to_bytes())
        members[1][0].size = len(members[1][1])
    edit_members(members)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    out.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return out


def add(name: str, data: bytes = b"x", **attrs):  # type: ignore[no-untyped-def]
    def edit(members: list) -> None:  # type: ignore[type-arg]
        info = tarfile.TarInfo(name)
        info.size = len(data)
        for k, v in attrs.items():
            setattr(info, k, v)
        # at the end of the kernel part, before the headers: where an install reads it
        at = next((i for i, (m, _) in enumerate(members) if m.name.startswith("headers/")), len(members))
        members.insert(at, (info, data))

    return edit


def listed(name: str, data: bytes = b"x", mode: int = 0o644):  # type: ignore[no-untyped-def]
    import hashlib

    def edit(m: Manifest) -> None:
        m.files[name] = FileEntry(hashlib.sha256(data).hexdigest(), len(data), mode)

    return edit


def link_listed(name: str, target: str):  # type: ignore[no-untyped-def]
    def edit(m: Manifest) -> None:
        m.links[name] = target

    return edit


CASES = {
    "absolute": (add("/etc/passwd"), None, "absolute"),
    "dotdot": (add("modules/../../etc/x"), None, "not normalized"),
    "escaping link": (
        add("modules/evil", type=tarfile.SYMTYPE, linkname="../../../etc"),
        link_listed("modules/evil", "../../../etc"),
        "escapes",
    ),
    "link into another folder": (
        add("modules/h", type=tarfile.SYMTYPE, linkname="../headers"),
        link_listed("modules/h", "../headers"),
        "escapes",
    ),
    "device node": (add("modules/null", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3), None, "not a regular"),
    "setuid": (add("modules/suid", mode=0o4755), listed("modules/suid", mode=0o4755), "setuid"),
    "not in manifest": (add("modules/extra.ko"), None, "not in the manifest"),
    "size differs": (add("modules/sized.ko", b"xx"), listed("modules/sized.ko", b"x"), "size"),
    "below a link": (add("headers/include/asm/x.h"), listed("headers/include/asm/x.h"), "below the symlink"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_package_is_refused_and_nothing_written(case: str, tmp_path: Path) -> None:
    good = fake_package(tmp_path / "good")
    edit_members, edit_manifest, needle = CASES[case]
    bad = rebuild(good, tmp_path / "bad.tar.zst", edit_members, edit_manifest)
    with pytest.raises(PackageError) as refused:
        check_package(bad)
    assert needle in refused.value.message, refused.value.message
    root = make_root(tmp_path / "root")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    run = cli("install", bad, "--root", root, "--initramfs", "none")
    assert_user_facing_error(run, 2, "refused")
    ours, theirs = run.err.splitlines()[0], cli("verify", bad).err.splitlines()[0]
    assert ours == theirs and needle in ours, (ours, theirs)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_manifest_mismatch_is_refused(tmp_path: Path) -> None:
    good = fake_package(tmp_path / "good")

    def tamper(members: list) -> None:  # type: ignore[type-arg]
        info, data = members[0]
        doc = json.loads(data)
        doc["kernel_release"] = "6.1.0-other"
        members[0] = (info, canonical_json(doc))
        info.size = len(members[0][1])

    bad = rebuild(good, tmp_path / "bad.tar.zst", tamper)
    with pytest.raises(PackageError, match=f"{METADATA}: sha256 differs from the manifest"):
        check_package(bad)
    run = cli("install", bad, "--root", make_root(tmp_path / "r"), "--initramfs", "none")
    assert_user_facing_error(run, 2, "refused")


def test_not_a_package(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"not zstd")
    run = cli("install", junk, "--root", make_root(tmp_path / "r"))
    assert_user_facing_error(run, 2, "not a readable distkernel package")
    missing = cli("install", tmp_path / "nope.tar.zst", "--root", tmp_path / "r")
    assert_user_facing_error(missing, 2, "no such package file")


def test_zstd_of_garbage_is_not_a_package(tmp_path: Path) -> None:
    """Valid zstd around bytes that are no tar: one line, not a traceback from the header walk."""
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(zstandard.ZstdCompressor().compress(b"hello" + b"Z" * 2000))
    run = cli("install", junk, "--root", make_root(tmp_path / "r"))
    assert_user_facing_error(run, 2, "not a readable distkernel package")
