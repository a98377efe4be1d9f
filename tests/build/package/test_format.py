"""Writer and reader on small synthetic payloads (the real package is tested in
tests/test_kernel_build.py)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from distkernel.build.package import writer
from distkernel.build.package.format import Metadata
from distkernel.build.package.reader import PackageError, check_package, read_metadata
from distkernel.build.package.writer import Member, write_package
from distkernel.core.errors import UserError
from tests.build.package.images import fake_bzimage


def metadata(**kw: object) -> Metadata:
    base = dict(
        name="t",
        variant="",
        kernel_release="6.1.7-t",
        version="6.1.7",
        arch="x86_64",
        recipe_sha256="a" * 64,
        config_sha256="c" * 64,
        source={},
        toolchain={},
        build_date=1700000000,
        sizes={},
        image="kernel/vmlinuz",
        modules=["m"],
    )
    base.update(kw)
    return Metadata(**base)  # type: ignore[arg-type]


def members(tmp_path: Path) -> list[Member]:
    (tmp_path / "vmlinuz").write_bytes(fake_bzimage("6.1.7-t"))
    return [
        Member("kernel/vmlinuz", source=tmp_path / "vmlinuz"),
        Member("kernel/System.map", data=b"ffffffff81000000 T _text\n"),
        Member("kernel/config", data=b"CONFIG_MODULES=y\n"),
        Member("modules/kernel/lib/m.ko", data=b"module"),
        Member("headers/scripts/mod/modpost", data=b"#!bin", executable=True),
        Member("headers/include/asm", link="../arch/x86/include/asm"),
        Member("headers/arch/x86/include/asm/a.h", data=b"#define A 1\n"),
    ]


def test_roundtrip_metadata_first_and_everything_verifies(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "out", metadata(), members(tmp_path))
    assert pkg.name == "t-6.1.7-t-x86_64.tar.zst"
    m = read_metadata(pkg)
    assert m.kernel_release == "6.1.7-t" and m.sizes["files"] == 6 and m.sizes["kernel"] == 8192 + 25 + 17
    result = check_package(pkg)
    assert result.ok, result.problems
    assert result.files == 6
    listing = subprocess.run(["tar", "--zstd", "-tvf", pkg], capture_output=True, text=True, check=True).stdout
    names = [line.split()[5] for line in listing.splitlines()]
    assert names[:2] == ["metadata.json", "manifest.json"]
    assert "root/root" in listing and "2023-11-14" in listing
    assert next(line.split()[0] for line in listing.splitlines() if "modpost" in line) == "-rwxr-xr-x"


def test_output_is_deterministic_across_dirs_and_worker_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_package(tmp_path / "a", metadata(), members(tmp_path))
    monkeypatch.setattr(writer, "ZSTD_WORKERS", 1)
    b = write_package(tmp_path / "b", metadata(), list(reversed(members(tmp_path))))
    assert a.read_bytes() == b.read_bytes()


def repack(src: Path, dst: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a package member by member through `change(info, data) -> (info, data) | None`
    (GNU tar, as the writer makes it)."""
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(src.read_bytes()), read_across_frames=True).read()
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(raw)) as tin,
        tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tout,
    ):
        for info in tin:
            data = tin.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            changed = change(info, data)
            if changed:
                info, data = changed
                info.size = len(data)
                tout.addfile(info, io.BytesIO(data) if info.isfile() else None)
    dst.write_bytes(zstandard.ZstdCompressor().compress(out.getvalue()))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda i, d: (i, b"evil") if i.name.endswith("m.ko") else (i, d), "size 4 differs"),
        (lambda i, d: (i, d[:-1] + b"X") if i.name.endswith("m.ko") else (i, d), "sha256 differs"),
        (lambda i, d: None if i.name.endswith("a.h") else (i, d), "in the manifest but not in the package"),
    ],
)
def test_tampering_is_reported(tmp_path: Path, change, problem: str) -> None:  # type: ignore[no-untyped-def]
    pkg = write_package(tmp_path / "out", metadata(), members(tmp_path))
    bad = tmp_path / "bad.tar.zst"
    repack(pkg, bad, change)
    with pytest.raises(PackageError) as refused:
        check_package(bad)
    assert problem in refused.value.message


def _rename_image(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
    if info.name == "kernel/vmlinuz":
        info.name = "../../etc/passwd"
    return info, data


def _setuid(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
    if info.name.endswith("a.h"):
        info.mode = 0o4755
    return info, data


def _relink(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
    if info.issym():
        info.linkname = "../../../../etc"
    return info, data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_rename_image, "../../etc/passwd: path is not normalized or leaves the package"),
        (_setuid, "setuid/setgid"),
        (_relink, "symlink not in the manifest"),
    ],
)
def test_hostile_members_are_reported(tmp_path: Path, change, problem: str) -> None:  # type: ignore[no-untyped-def]
    pkg = write_package(tmp_path / "out", metadata(), members(tmp_path))
    bad = tmp_path / "bad.tar.zst"
    repack(pkg, bad, change)
    with pytest.raises(PackageError) as refused:
        check_package(bad)
    assert problem in refused.value.message


def test_not_a_package(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"hello")
    with pytest.raises(UserError, match="not a readable distkernel package"):
        read_metadata(junk)
    truncated = tmp_path / "t.tar.zst"
    pkg = write_package(tmp_path / "out", metadata(), members(tmp_path))
    truncated.write_bytes(pkg.read_bytes()[:-200])
    with pytest.raises(UserError, match="not a readable distkernel package"):
        check_package(truncated)


@pytest.mark.parametrize("member", ["metadata.json", "manifest.json"])
@pytest.mark.parametrize("junk", [b"{not json", b"[1, 2]", b'{"files": {}}'])
def test_corrupt_control_member_is_one_user_error(tmp_path: Path, member: str, junk: bytes) -> None:
    pkg = write_package(tmp_path / "out", metadata(), members(tmp_path))
    bad = tmp_path / "bad.tar.zst"
    repack(pkg, bad, lambda i, d: (i, junk) if i.name == member else (i, d))
    with pytest.raises(UserError, match=f"{member} is corrupt"):
        check_package(bad)
    if member == "metadata.json":
        with pytest.raises(UserError, match=f"{member} is corrupt"):
            read_metadata(bad)


def test_a_part_made_ahead_gives_the_same_bytes(tmp_path: Path) -> None:
    whole = write_package(tmp_path / "plain", metadata(), members(tmp_path))
    heads = [m for m in members(tmp_path) if m.path.startswith("headers/")]
    part = writer.prepare_part(list(reversed(heads)), 1700000000, tmp_path / "frame")
    assert [m.path for m in part.members] == sorted(m.path for m in heads)
    ahead = write_package(tmp_path / "ahead", metadata(), members(tmp_path), ready=part)
    assert ahead.read_bytes() == whole.read_bytes()


def test_a_part_made_ahead_of_other_members_is_not_taken(tmp_path: Path) -> None:
    whole = write_package(tmp_path / "plain", metadata(), members(tmp_path))
    stale = [Member("headers/include/stale.h", data=b"#define OLD 1\n")]
    part = writer.prepare_part(stale, 1700000000, tmp_path / "frame")
    ahead = write_package(tmp_path / "ahead", metadata(), members(tmp_path), ready=part)
    assert ahead.read_bytes() == whole.read_bytes()
    with pytest.raises(ValueError, match="more than one part"):
        writer.prepare_part(members(tmp_path), 1700000000, tmp_path / "frame2")
