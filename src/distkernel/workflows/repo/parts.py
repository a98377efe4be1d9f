"""A package as a binhost publishes it: two files, each a package stream of its own.

The kernel part holds the control members (metadata.json, manifest.json, manifest.sig)
and the payload under kernel/ and modules/: all a binary-only install reads. The headers
part holds the same control members and the payload under headers/, which only building
external modules needs. Both carry the one signed manifest of the whole package, so each
is verified alone (build/package/reader.py, `part=`), and a client downloads the headers
only when it builds modules.

Members are copied as they are (the same tar headers, in the same order): splitting is
reproducible, and joining the two parts gives back the package file byte for byte (with
the package writer's compression). The parts are compressed harder than the package
file: they are made once per binhost and downloaded by every client, and level 19 takes
about a tenth off the headers part (level 15 leaves it larger than Debian's own
linux-headers .deb of the same build) for about three times the compression time."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import zstandard

from distkernel.build.package import frames
from distkernel.build.package.format import (
    CONTROL,
    HEADERS_DIR,
    HEADERS_PART,
    KERNEL_PART,
    SUFFIX,
    WHOLE,
)
from distkernel.build.package.reader import VerifiedPackage, check_package
from distkernel.build.package.writer import (
    ZSTD_WORKERS,
    compression_params,
    write_frames,
)

HEADERS_INFIX = ".headers"
PART_LEVEL = 19  # with the writer's window (what plain `zstd -d` accepts), long-distance matching, jobs


def headers_name(kernel_name: str) -> str:
    """The headers part's file name beside the kernel part's NAME-RELEASE-ARCH[+VARIANT].tar.zst."""
    return kernel_name.removesuffix(SUFFIX) + HEADERS_INFIX + SUFFIX


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[tarfile.TarFile]:
    with (
        open(path, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|") as tar,
    ):
        yield tar


@contextlib.contextmanager
def _writing(path: Path, params: zstandard.ZstdCompressionParameters) -> Iterator[tarfile.TarFile]:
    """A tar stream into PATH compressed with PARAMS; fsync'ed at the end."""
    with open(path, "wb") as raw:
        with (
            zstandard.ZstdCompressor(compression_params=params).stream_writer(raw, closefd=False) as zw,
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.GNU_FORMAT) as tar,
        ):
            yield tar
        raw.flush()
        os.fsync(raw.fileno())


def _top(name: str) -> str:
    return name.split("/", 1)[0]


def _copy(tar_in: tarfile.TarFile, info: tarfile.TarInfo, tar_out: tarfile.TarFile) -> None:
    tar_out.addfile(info, tar_in.extractfile(info) if info.isfile() else None)


def _control(tar_in: tarfile.TarFile, info: tarfile.TarInfo) -> io.BytesIO:
    data = tar_in.extractfile(info)
    return io.BytesIO(data.read() if data is not None else b"")


def split_package(
    package: Path, kernel_out: Path, headers_out: Path, verified: VerifiedPackage | None = None
) -> VerifiedPackage:
    """Write PACKAGE's kernel and headers parts (the package judged whole by the one
    reader first, unless VERIFIED is that verdict; each part judged alone after, against
    the same manifest and signature); the verdict on the package."""
    verified = verified or check_package(package)
    params = compression_params(ZSTD_WORKERS, PART_LEVEL)
    with _reading(package) as tar_in, _writing(kernel_out, params) as kernel, _writing(headers_out, params) as headers:
        for info in tar_in:
            if info.name in CONTROL:  # first, and once each: the reader saw to it
                body = _control(tar_in, info)
                kernel.addfile(info, body)
                body.seek(0)
                headers.addfile(info, body)
                continue
            _copy(tar_in, info, headers if _top(info.name) == HEADERS_DIR else kernel)
    for part, path in ((KERNEL_PART, kernel_out), (HEADERS_PART, headers_out)):
        check_package(path, expect=verified, part=part)
    return verified


def join_parts(kernel: Path, headers: Path, out: Path, judged: VerifiedPackage | None = None) -> VerifiedPackage:
    """The package file as built, from its two parts (each judged alone first, with the
    same manifest and signature, unless JUDGED is the kernel part's verdict from a fetch
    that judged both so), in the writer's frames; judged whole once written."""
    first = judged
    if first is None:
        first = check_package(kernel, part=KERNEL_PART)
        check_package(headers, expect=first, part=HEADERS_PART)
    with _reading(kernel) as k_in, _reading(headers) as h_in, open(out, "wb") as raw:
        k_members = iter(k_in)
        control, payload = b"", None
        for info in k_members:  # the control members, from the kernel part
            if info.name not in CONTROL:
                payload = info
                break
            control += frames.member(info, _control(k_in, info).getvalue())

        def kernel_part() -> Iterator[bytes]:
            rest = payload
            while rest is not None:
                yield from frames.copied(k_in, rest)
                rest = next(k_members, None)

        def headers_part() -> Iterator[bytes]:
            for info in h_in:
                if info.name not in CONTROL:
                    yield from frames.copied(h_in, info)

        write_frames(raw, control, (kernel_part(), headers_part()))  # the writer's order: format.PAYLOAD_PARTS
        raw.flush()
        os.fsync(raw.fileno())
    return check_package(out, expect=first, part=WHOLE)
