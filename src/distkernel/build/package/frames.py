"""How a package's tar is cut into zstd frames, so that signing never recompresses the
payload. The writer compresses three frames, one after the other, over one GNU tar:

1. the head: `metadata.json`, `manifest.json` and `manifest.sig` when signed;
2. the payload members;
3. the tail: the end-of-archive marker and tar's record padding.

Concatenated frames are one stream to `zstd -d` and `tar --zstd`, and the tar inside
is byte for byte the one a single frame would hold. Signing writes a new head and
tail (a few KiB) and copies the payload frame's compressed bytes as they are; the
tail moves with the head because the padding rounds the whole archive to a record.

Here: the tar bytes of a member (written, or `copied` from a tar being read) and of the
tail, and `spans`, which finds the frames of a file from their headers and block
headers alone (nothing is decompressed). `writer.write_frames` writes them."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to whole records after its end marker
END = 2 * BLOCK  # the end-of-archive marker: two zero blocks
MAGIC = b"\x28\xb5\x2f\xfd"
HEADER_MAX = 18  # the longest zstd frame header
BLOCK_HEADER = 3
RLE_BLOCK, RESERVED_BLOCK = 1, 3
CHECKSUM = 4


def header(info: tarfile.TarInfo) -> bytes:
    """The member's header blocks, as `tarfile` writes them in GNU format (long names
    in GNU long-name records)."""
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> bytes:
    """The zeros after SIZE bytes of member data, up to the next block."""
    return bytes(-size % BLOCK)


def member(info: tarfile.TarInfo, data: bytes) -> bytes:
    return header(info) + data + padding(len(data))


def copied(tar: tarfile.TarFile, info: tarfile.TarInfo, chunk: int = 1 << 20) -> Iterator[bytes]:
    """INFO, a member of TAR being read, as tar bytes in pieces (its data streamed)."""
    yield header(info)
    data = tar.extractfile(info) if info.isfile() else None
    if data is not None:
        while piece := data.read(chunk):
            yield piece
        yield padding(info.size)


def tail(length: int) -> bytes:
    """The end of an archive whose members take LENGTH bytes (only LENGTH modulo a
    record matters): the end marker, then zeros up to a whole record."""
    return bytes(END + (-(length + END) % RECORD))


def spans(f: BinaryIO, size: int) -> list[tuple[int, int]] | None:
    """(start, end) of every zstd frame of the SIZE-byte file F, walked through the
    frame and block headers; None when F is not a run of whole zstd frames."""
    found: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        f.seek(pos)
        head = f.read(HEADER_MAX)
        if head[:4] != MAGIC:
            return None
        try:
            at = pos + zstandard.frame_header_size(head)
            checksum = zstandard.get_frame_parameters(head).has_checksum
        except zstandard.ZstdError:
            return None
        last = False
        while not last:
            f.seek(at)
            raw = f.read(BLOCK_HEADER)
            if len(raw) < BLOCK_HEADER:
                return None
            word = int.from_bytes(raw, "little")
            last, kind, length = bool(word & 1), (word >> 1) & 3, word >> 3
            if kind == RESERVED_BLOCK:
                return None
            at += BLOCK_HEADER + (1 if kind == RLE_BLOCK else length)
        at += CHECKSUM if checksum else 0
        if at > size:
            return None
        found.append((pos, at))
        pos = at
    return found
