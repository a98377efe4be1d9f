"""The package file's frames: the head, the kernel part (kernel/, modules/), the headers
part, the tail, each a zstd frame of its own, so that a reader taking the kernel part
stops where the headers begin."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import zstandard

from distkernel.build.package.format import CONTROL, part_of
from tests.target.install.helpers import fake_package
from tests.workflows.repo.test_sign_frames import frame_bytes


def _names(frame: bytes) -> list[str]:
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame)).read()
    names = []
    with tarfile.open(fileobj=io.BytesIO(raw + bytes(1024)), mode="r:") as tar:
        names = [m.name for m in tar]
    return names


def test_each_part_of_the_payload_is_a_frame_kernel_first(tmp_path: Path) -> None:
    pkg = fake_package(tmp_path)
    head, kernel, headers, tail = frame_bytes(pkg)
    assert all(n in CONTROL for n in _names(head))
    kernel_names, headers_names = _names(kernel), _names(headers)
    assert {part_of(n) for n in kernel_names} == {"kernel"} and kernel_names == sorted(kernel_names)
    assert {n.split("/", 1)[0] for n in kernel_names} == {"kernel", "modules"}
    assert {part_of(n) for n in headers_names} == {"headers"} and headers_names == sorted(headers_names)
    assert not zstandard.ZstdDecompressor().stream_reader(io.BytesIO(tail)).read().strip(b"\0")
