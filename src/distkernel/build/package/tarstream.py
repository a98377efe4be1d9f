"""A package's archive read as a stream, strictly: whole zstd frames one after the other
(each checked to its end and its checksum; the frame that ends the archive is the last
thing in the file; frames.py says how the writer cuts them), holding a tar in exactly
the GNU form the writer makes. Nothing is buffered whole: the decompressor is fed 512
bytes at a time, so even a frame of zeros yields at most 16 MiB per step.

Refused here: a stream that is not zstd, cut short or followed by anything; a header
whose checksum is wrong, that is not GNU tar (POSIX ustar magic, a PAX record, the
prefix field or GNU extension fields in use), or of a kind other than a regular file,
a folder or a symlink (with GNU long-name records for names over 100 bytes)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from distkernel.build.package.format import MAX_PATH
from distkernel.build.package.schema import SchemaError

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to whole records after its end marker
ZEROS = bytes(BLOCK)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GNU_MAGIC = b"ustar  \0"
POSIX_MAGIC = b"ustar\x0000"
FEED = 512  # compressed bytes per decompressor call: at most 16 MiB out (zstd's best ratio)
READ = 1 << 20
OCTAL = re.compile(rb" *([0-7]+) *")
KINDS = {b"0": "file", b"5": "dir", b"2": "symlink"}
REFUSED = {
    b"1": "a hard link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"x": "a PAX extended header",
    b"g": "a PAX global header",
    b"S": "a GNU sparse file",
    b"\0": "an old-style (pre-POSIX) regular file",
}


class Unreadable(Exception):
    """The stream is no zstd-compressed GNU tar (said in one short phrase)."""


@dataclass(frozen=True)
class Header:
    name: str
    kind: str  # file, dir or symlink
    size: int
    mode: int
    linkname: str


class _Zstd:
    """The decompressed bytes of a run of zstd frames, in pieces, one frame at a time."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.d = zstandard.ZstdDecompressor().decompressobj()
        self.raw = memoryview(b"")
        self.started = False
        self.ended = False

    def _more_raw(self) -> bool:
        try:
            data = self.f.read(READ)
        except OSError as e:
            raise Unreadable(f"read error: {e.strerror}") from None
        if not self.started:
            self.started = True
            if data[:4] != ZSTD_MAGIC:
                raise Unreadable("a gzip stream, not zstd" if data[:2] == b"\x1f\x8b" else "not zstd-compressed")
        self.raw = memoryview(bytes(self.raw) + data) if self.raw else memoryview(data)
        return bool(data)

    def read(self) -> bytes:
        """At least one byte of the current frame, or b"" once that frame has ended."""
        out: list[bytes] = []
        size = 0
        while size < READ and not self.ended:
            if not self.raw and not self._more_raw():
                raise Unreadable("the zstd stream ends early (the file is truncated)")
            piece, self.raw = self.raw[:FEED], self.raw[FEED:]
            try:
                got = self.d.decompress(piece)
            except zstandard.ZstdError as e:
                raise Unreadable(f"zstd: {str(e).removeprefix('zstd decompress error: ')}") from None
            if got:
                out.append(got)
                size += len(got)
            if self.d.eof:
                self.ended = True
                self.raw = memoryview(self.d.unused_data + bytes(self.raw))
        return b"".join(out)

    def next_frame(self) -> bool:
        """Start the frame after the one that ended: False at the end of the file; refused
        when what follows is not a zstd frame."""
        assert self.ended
        while len(self.raw) < len(ZSTD_MAGIC) and self._more_raw():
            pass
        if not self.raw:
            return False
        if self.raw[: len(ZSTD_MAGIC)] != ZSTD_MAGIC:
            raise Unreadable("data after the end of the zstd frame")
        self.d = zstandard.ZstdDecompressor().decompressobj()
        self.ended = False
        return True

    def last_frame(self) -> None:
        """The current frame, read to its end, must be the last thing in the file."""
        while self.read():
            pass
        if self.next_frame():
            raise Unreadable("data after the end of the zstd frame")


def _number(field: bytes, what: str) -> int:
    if field[:1] == b"\x80":  # GNU base-256, for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    digits = OCTAL.fullmatch(field.split(b"\0", 1)[0])
    if digits is None:
        raise Unreadable(f"a tar header with a bad {what} field")
    return int(digits.group(1), 8)


def _text(field: bytes, what: str) -> str:
    value, _, rest = field.partition(b"\0")
    if rest.strip(b"\0"):
        raise Unreadable(f"a tar header whose {what} has bytes after its end")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(f"{value[:80]!r}: a {what} that is not UTF-8") from None


class TarStream:
    """`next()` gives each member's header; its data must then be read (chunks/read_all)
    before the next call. None at the end marker, once the frame has been checked."""

    def __init__(self, f: BinaryIO) -> None:
        self.z = _Zstd(f)
        self.buf = b""
        self.pos = 0
        self.last = "the start of the archive"

    def _fill(self, n: int) -> bool:
        while len(self.buf) - self.pos < n:
            more = self.z.read()
            if not more:
                if self.z.next_frame():
                    continue
                return False
            self.buf = self.buf[self.pos :] + more
            self.pos = 0
        return True

    def _block(self) -> bytes:
        if not self._fill(BLOCK):
            raise Unreadable(f"the archive ends early, after {self.last}")
        block = self.buf[self.pos : self.pos + BLOCK]
        self.pos += BLOCK
        return block

    def _end(self) -> None:
        if self._block() != ZEROS:
            raise Unreadable(f"a broken end-of-archive marker after {self.last}")
        rest = self.buf[self.pos :]
        while more := self.z.read():  # the record padding, then the frame's end
            rest += more
            if len(rest) > RECORD:
                break
        if len(rest) > RECORD or rest.strip(b"\0"):
            raise Unreadable(f"data after the end of the archive (after {self.last})")
        self.z.last_frame()

    def _header(self) -> tuple[bytes, bytes] | None:
        h = self._block()
        if h == ZEROS:
            self._end()
            return None
        if int(_number(h[148:156], "checksum")) != sum(h) - sum(h[148:156]) + 8 * 32:
            raise Unreadable(f"a tar header with a bad checksum after {self.last}")
        return h, h[156:157]

    def next(self) -> Header | None:
        long_name: str | None = None
        long_link: str | None = None
        while True:
            got = self._header()
            if got is None:
                if long_name is not None or long_link is not None:
                    raise Unreadable(f"a long-name record without its member after {self.last}")
                return None
            h, kind = got
            if h[257:265] != GNU_MAGIC:
                shown = h[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
                posix = h[257:265] == POSIX_MAGIC
                raise SchemaError(
                    f"{shown}: {'a POSIX ustar or PAX header' if posix else 'not a tar header'}; "
                    "format v1 is GNU tar as distkernel writes it"
                )
            name = long_name if long_name is not None else _text(h[0:100], "name")
            if h[345:] != ZEROS[345:]:
                raise SchemaError(f"{name[:200]}: its tar header uses the prefix or GNU extension fields")
            size = _number(h[124:136], "size")
            if kind in (b"L", b"K"):
                if size > MAX_PATH + 1 or (long_name if kind == b"L" else long_link) is not None:
                    raise SchemaError(f"{name[:200]}: a bad GNU long-name record")
                value = self.read_all(size)
                if not value.endswith(b"\0") or b"\0" in value[:-1]:
                    raise SchemaError(f"{name[:200]}: a bad GNU long-name record")
                text = _text(value, "long name")
                long_name, long_link = (text, long_link) if kind == b"L" else (long_name, text)
                continue
            if kind not in KINDS:
                why = REFUSED.get(kind, f"tar type {kind!r}")
                raise SchemaError(f"{name[:200]}: not a regular file, folder or symlink ({why})")
            linkname = long_link if long_link is not None else _text(h[157:257], "link target")
            if KINDS[kind] != "file" and size:
                raise SchemaError(f"{name[:200]}: a {KINDS[kind]} with data")
            if KINDS[kind] == "dir" and name.endswith("/"):
                name = name[:-1]
            self.last = name[:200]
            return Header(name, KINDS[kind], size, _number(h[100:108], "mode") & 0o7777, linkname)

    def chunks(self, size: int) -> Iterator[memoryview]:
        """The current member's data, then its padding checked."""
        left = size
        while left:
            if self.pos >= len(self.buf):
                self.buf, self.pos = self.z.read(), 0
                if not self.buf and self.z.next_frame():
                    continue
                if not self.buf:
                    raise Unreadable(f"the archive ends early, in {self.last}")
            take = min(left, len(self.buf) - self.pos)
            yield memoryview(self.buf)[self.pos : self.pos + take]
            self.pos += take
            left -= take
        pad = -size % BLOCK
        if pad:
            if not self._fill(pad):
                raise Unreadable(f"the archive ends early, in {self.last}")
            if self.buf[self.pos : self.pos + pad] != ZEROS[:pad]:
                raise Unreadable(f"non-zero padding after {self.last}")
            self.pos += pad

    def read_all(self, size: int) -> bytes:
        return b"".join(bytes(c) for c in self.chunks(size))
