"""Write a package: deterministic tar (members in format.payload_order, fixed owner/mtime/
modes) in zstd frames (frames.py): metadata, the manifest (and its signature); the
payload, a frame per part (the kernel's, then the headers'); the end of the archive.
Signing replaces the first and last frames only.
What is written passes the reader's own checks first (schema, declared content, the
kernel image against the metadata): a package this writes is never one it refuses."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from distkernel.build.package import frames
from distkernel.build.package.declared import check_declared
from distkernel.build.package.format import (
    IMAGE,
    MANIFEST,
    METADATA,
    SIGNATURE,
    FileEntry,
    Manifest,
    Metadata,
    canonical_json,
    part_of,
    payload_order,
)
from distkernel.build.package.image import ImageCheck
from distkernel.build.package.schema import SchemaError, parse_manifest, parse_metadata
from distkernel.core.cache import fsync_dir
from distkernel.core.errors import UserError

# Long-distance matching over a 128 MiB window (the most plain `zstd -d` accepts without
# --long) finds the repetition across the headers tree. Level 9 is the knee for the
# default recipe's 52 MB payload (two workers, idle machine): 11.27 MB in 0.45 s, where
# level 12 takes 0.97 s for 1.2 % less and level 15 several seconds for 3 % less (paid
# by every build); a binhost recompresses its parts harder anyway (workflows/repo/
# parts.py). 8 MiB jobs; the output does not depend on the number of workers (a test).
ZSTD_LEVEL = 9
ZSTD_WINDOW_LOG = 27
ZSTD_WORKERS = 2
ZSTD_JOB_SIZE = 8 << 20
COPY = 1 << 20


@dataclass(frozen=True)
class Member:
    path: str
    source: Path | None = None  # a file on disk ...
    data: bytes | None = None  # ... or bytes
    link: str | None = None  # ... or a symlink target
    executable: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


def _info(path: str, date: int, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size, info.mtime, info.mode = size, date, mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _file(path: str, data: bytes, date: int, mode: int = 0o644) -> bytes:
    return frames.member(_info(path, date, len(data), mode), data)


def head(meta_bytes: bytes, manifest_bytes: bytes, signature: bytes | None, date: int) -> bytes:
    """The tar bytes of the control members (the first frame's content)."""
    control = _file(METADATA, meta_bytes, date) + _file(MANIFEST, manifest_bytes, date)
    return control + (_file(SIGNATURE, signature, date) if signature is not None else b"")


def compress_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(compression_params=compression_params(ZSTD_WORKERS)).compress(data)


def payload_frame(raw: BinaryIO, pieces: Iterable[bytes]) -> int:
    """PIECES compressed into one frame written to RAW; their length."""
    length = 0
    params = compression_params(ZSTD_WORKERS)
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(raw, closefd=False) as zw:
        for piece in pieces:
            zw.write(piece)
            length += len(piece)
    return length


def write_frames(raw: BinaryIO, control: bytes, payload: Iterable[Iterable[bytes]]) -> None:
    """A package's frames (frames.py) to RAW: CONTROL, the head's tar bytes; a frame for
    each of PAYLOAD's groups of members' tar bytes (in pieces); the tail."""
    raw.write(compress_frame(control))
    length = len(control) + sum(payload_frame(raw, group) for group in payload)
    raw.write(compress_frame(frames.tail(length)))


@dataclass(frozen=True)
class Part:
    """One part's payload frame, compressed ahead of the package (prepare_part): the
    writer copies it as it is when the package's members of that part are MEMBERS."""

    members: tuple[Member, ...]  # in payload_order
    frame: Path
    length: int  # of the tar bytes in the frame
    files: dict[str, FileEntry]
    links: dict[str, str]


def prepare_part(members: list[Member], date: int, frame: Path) -> Part:
    """MEMBERS (one part's) compressed into the file FRAME exactly as write_package
    would put them in its frame."""
    ordered = tuple(sorted(members, key=lambda m: payload_order(m.path)))
    if len({part_of(m.path) for m in ordered}) > 1:
        raise ValueError("prepare_part: members of more than one part")
    files: dict[str, FileEntry] = {}
    links: dict[str, str] = {}
    with open(frame, "wb") as raw:
        length = payload_frame(raw, _payload(list(ordered), date, files, links))
    return Part(ordered, frame, length, files, links)


def _by_part(members: list[Member]) -> Iterator[tuple[Member, ...]]:
    """The members a part at a time (members come in payload_order)."""
    for _part, group in itertools.groupby(members, key=lambda m: part_of(m.path)):
        yield tuple(group)


def _payload(members: list[Member], date: int, files: dict[str, FileEntry], links: dict[str, str]) -> Iterator[bytes]:
    """The members' tar bytes, each file's manifest entry put in FILES and each symlink
    in LINKS on the way: a file is read once, hashed while the payload is compressed."""
    for m in members:
        if m.link is not None:
            links[m.path] = m.link
            info = _info(m.path, date, mode=0o777)
            info.type, info.linkname = tarfile.SYMTYPE, m.link
            yield frames.header(info)
        else:
            data = m.read()
            mode = 0o755 if m.executable else 0o644
            files[m.path] = FileEntry(hashlib.sha256(data).hexdigest(), len(data), mode)
            yield _file(m.path, data, date, mode)


def payload_sizes(members: Iterable[Member]) -> dict[str, int]:
    sizes: dict[str, int] = {"files": 0}
    for m in members:
        if m.link is None:
            top = m.path.split("/", 1)[0]
            sizes[top] = sizes.get(top, 0) + (m.source.stat().st_size if m.source else len(m.data or b""))
            sizes["files"] += 1
    return sizes


def compression_params(workers: int, level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressionParameters:
    """The package's zstd settings; LEVEL differs only for a binhost's parts."""
    return zstandard.ZstdCompressionParameters.from_level(
        level,
        window_log=ZSTD_WINDOW_LOG,
        enable_ldm=True,
        threads=workers,
        job_size=ZSTD_JOB_SIZE,
        write_checksum=1,
    )


def _check(metadata: Metadata, meta_bytes: bytes, manifest_bytes: bytes, members: list[Member]) -> None:
    try:
        check_declared(parse_metadata(meta_bytes), parse_manifest(manifest_bytes))
        image = ImageCheck()
        image.feed(next(m for m in members if m.path == IMAGE).read())
        image.finish(metadata)
    except SchemaError as e:
        raise UserError(f"{metadata.filename}: not packaged, the package would be refused: {e}") from None


def write_package(
    dest_dir: Path,
    metadata: Metadata,
    members: list[Member],
    *,
    sign: Callable[[bytes], bytes] | None = None,
    ready: Part | None = None,
) -> Path:
    """Write `dest_dir/<metadata.filename>` atomically and return its path; a part whose
    members are READY's is copied from its frame instead of compressed again."""
    members = sorted(members, key=lambda m: payload_order(m.path))
    metadata = dataclasses.replace(metadata, sizes=payload_sizes(members))
    meta_bytes = canonical_json(metadata.to_json())
    date = metadata.build_date

    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / metadata.filename
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    body = final.with_name(f".{final.name}.payload-{os.getpid()}")
    files: dict[str, FileEntry] = {}
    links: dict[str, str] = {}
    try:
        # The payload's frames first, beside the package (the manifest, which comes
        # before them, is made as they are): then the head, the frames, the tail.
        with open(body, "w+b") as side:
            length = 0
            for group in _by_part(members):
                if ready is not None and group == ready.members:
                    with open(ready.frame, "rb") as made:
                        shutil.copyfileobj(made, side, COPY)
                    files.update(ready.files)
                    links.update(ready.links)
                    length += ready.length
                else:
                    length += payload_frame(side, _payload(list(group), date, files, links))
            manifest_bytes = Manifest(hashlib.sha256(meta_bytes).hexdigest(), files, links).to_bytes()
            _check(metadata, meta_bytes, manifest_bytes, members)
            control = head(meta_bytes, manifest_bytes, sign(manifest_bytes) if sign is not None else None, date)
            with open(tmp, "wb") as raw:
                raw.write(compress_frame(control))
                side.seek(0)
                shutil.copyfileobj(side, raw, COPY)
                raw.write(compress_frame(frames.tail(len(control) + length)))
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(tmp, final)
        fsync_dir(dest_dir)
    finally:
        tmp.unlink(missing_ok=True)
        body.unlink(missing_ok=True)
    return final
