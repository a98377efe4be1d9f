"""`distkernel sign` never recompresses a package's payload: the writer's zstd frames
(head, a frame per payload part, tail) let it replace the head and tail and copy the
payload frames' compressed bytes as they are. What it copies unjudged is judged in the result:
a payload frame that does not match the manifest is refused, the package left alone."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import zstandard

from distkernel.build.package import frames
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from tests.build.trust.helpers import tiny_package
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import fake_package


def frame_bytes(pkg: Path) -> list[bytes]:
    data = pkg.read_bytes()
    with open(pkg, "rb") as f:
        found = frames.spans(f, len(data))
    assert found is not None
    return [data[start:end] for start, end in found]


def tar_of(pkg: Path) -> bytes:
    with open(pkg, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()


def test_sign_copies_the_payload_frame_without_recompressing(tmp_path: Path, keys: KeySet) -> None:
    pkg = tiny_package(tmp_path / "p")
    head, payload, _tail = frame_bytes(pkg)
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    signed = frame_bytes(pkg)
    assert len(signed) == 3 and signed[1] == payload and signed[0] != head
    assert len(tar_of(pkg)) % frames.RECORD == 0  # the new tail still ends on a whole record
    assert cli("verify", pkg, "--key", keys.path(PACKAGE_PUB)).code == 0


def test_a_one_frame_package_is_signed_into_the_writers_three_frames(tmp_path: Path, keys: KeySet) -> None:
    """A package written as one zstd frame (an older writer) is rewritten member by
    member: the same bytes as a signed build."""
    built_signed = tiny_package(tmp_path / "a", key=keys.path(PACKAGE_KEY)).read_bytes()
    pkg = tiny_package(tmp_path / "b")
    pkg.write_bytes(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(tar_of(pkg)))
    assert len(frame_bytes(pkg)) == 1
    assert cli("verify", pkg).code == 0  # one frame is still a readable package
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    assert pkg.read_bytes() == built_signed


def test_sign_refuses_a_payload_frame_that_does_not_match_the_manifest(tmp_path: Path, keys: KeySet) -> None:
    pkg = tiny_package(tmp_path / "p")
    head, payload, tail = frame_bytes(pkg)
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload)).read()
    evil = raw.replace(b"\x7fELF fake module", b"\x7fELF evil module")
    assert evil != raw
    pkg.write_bytes(head + zstandard.ZstdCompressor(write_checksum=True).compress(evil) + tail)
    before = pkg.read_bytes()
    run = cli("sign", pkg, "--key", keys.path(PACKAGE_KEY))
    assert_user_facing_error(run, 2, f"{pkg}: refused", "hello.ko: sha256 differs")
    assert pkg.read_bytes() == before
    assert sorted(p.name for p in pkg.parent.iterdir()) == [pkg.name]  # no temporary file left


def test_a_package_cut_at_a_frame_boundary_is_refused_as_truncated(tmp_path: Path) -> None:
    pkg = tiny_package(tmp_path / "p")
    head, payload, _tail = frame_bytes(pkg)
    for cut, why in ((head, "the archive ends early"), (head + payload, "the archive ends early")):
        pkg.write_bytes(cut)
        assert_user_facing_error(cli("verify", pkg), 2, why)


def test_data_between_frames_that_is_no_zstd_frame_is_refused(tmp_path: Path) -> None:
    pkg = tiny_package(tmp_path / "p")
    head, payload, tail = frame_bytes(pkg)
    pkg.write_bytes(head + b"garbage" + payload + tail)
    assert_user_facing_error(cli("verify", pkg), 2, "data after the end of the zstd frame")


def test_the_frames_hold_the_same_tar_as_before(tmp_path: Path) -> None:
    """Head, payload and tail are cut at member boundaries of one GNU tar that plain
    tar reads whole."""
    pkg = tiny_package(tmp_path / "p")
    head, payload, tail = (zstandard.ZstdDecompressor().stream_reader(io.BytesIO(f)).read() for f in frame_bytes(pkg))
    with tarfile.open(fileobj=io.BytesIO(head + payload + tail)) as tar:
        names = tar.getnames()
    assert names[:2] == ["metadata.json", "manifest.json"] and "kernel/vmlinuz" in names
    assert not tail.strip(b"\0") and len(tail) >= frames.END


def test_sign_copies_each_payload_frame_of_a_package_with_headers(tmp_path: Path, keys: KeySet) -> None:
    """The kernel part's frame and the headers' frame both come through as they are."""
    pkg = fake_package(tmp_path / "p")
    head, kernel, headers, _tail = frame_bytes(pkg)
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    signed = frame_bytes(pkg)
    assert len(signed) == 4 and signed[1:3] == [kernel, headers] and signed[0] != head
    assert cli("verify", pkg, "--key", keys.path(PACKAGE_PUB)).code == 0
