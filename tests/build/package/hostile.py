"""Hostile packages made by hand from a real one: its members edited, then written as a
tar stream by hand (so a member may use another header format, a wrong checksum, or
gigabytes of zeros that are generated while compressing, never held whole), compressed
with zstd or gzip."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import zstandard

from distkernel.build.package.format import MANIFEST, METADATA, PART_TOPS, PAYLOAD_PARTS, canonical_json

BLOCK = 512
CHUNK = 1 << 20


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Zeros:
    """SIZE bytes of zeros, produced while the archive is written."""

    size: int


@dataclass
class Entry:
    info: tarfile.TarInfo
    data: bytes | Zeros = b""
    format: Literal[0, 1, 2] = tarfile.GNU_FORMAT
    bad_checksum: bool = False


@dataclass
class Hostile:
    """A package as editable parts: metadata and manifest documents, payload entries."""

    metadata: dict[str, Any]
    manifest: dict[str, Any]
    payload: list[Entry]
    extra_control: list[Entry] = field(default_factory=list)  # after the manifest

    @classmethod
    def of(cls, package: Path) -> Hostile:
        entries: list[Entry] = []
        with open(package, "rb") as f:
            stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    data = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
                    entries.append(Entry(info, data))
        meta, manifest = (json.loads(e.data) for e in entries[:2])  # type: ignore[arg-type]
        return cls(meta, manifest, entries[2:])

    def copy(self) -> Hostile:
        return copy.deepcopy(self)

    def member(self, name: str) -> Entry:
        return next(e for e in self.payload if e.info.name == name)

    def add_file(self, name: str, data: bytes | Zeros, *, listed: bool = True, mode: int = 0o644) -> Entry:
        """A regular file at the end of the payload, in the manifest (and the metadata's
        sizes) unless `listed` is False."""
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = (data.size if isinstance(data, Zeros) else len(data)), mode, 0
        entry = Entry(info, data)
        self.payload.append(entry)
        if listed:
            assert isinstance(data, bytes)
            self.manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mode": mode}
            self.resize()
        return entry

    def add_link(self, name: str, target: str, *, listed: bool = True) -> Entry:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entry = Entry(info)
        self.payload.append(entry)
        if listed:
            self.manifest["links"][name] = target
        return entry

    def add_special(self, name: str, kind: bytes, linkname: str = "") -> Entry:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        entry = Entry(info)
        self.payload.append(entry)
        return entry

    def replace_file(self, name: str, data: bytes) -> None:
        """New contents for a member, with its manifest entry and sizes to match."""
        entry = self.member(name)
        entry.data, entry.info.size = data, len(data)
        self.manifest["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        self.resize()

    def resize(self) -> None:
        sizes: dict[str, int] = {"files": len(self.manifest["files"])}
        for name, e in self.manifest["files"].items():
            top = name.split("/", 1)[0]
            sizes[top] = sizes.get(top, 0) + e["size"]
        self.metadata["sizes"] = sizes

    def control(self) -> list[Entry]:
        """metadata.json and manifest.json as they are now, the hash linking them updated."""
        meta = canonical_json(self.metadata)
        manifest = dict(self.manifest, metadata_sha256=hashlib.sha256(meta).hexdigest())
        out = []
        for name, data in ((METADATA, meta), (MANIFEST, canonical_json(manifest))):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, self.payload[0].info.mtime
            out.append(Entry(info, data))
        return out

    def entries(self) -> list[Entry]:
        """Control, then the payload in the writer's order of parts: a member added to
        kernel/ or modules/ (or a name of no part) ends the kernel part, before the headers,
        where an install that takes the kernel part still reads it."""
        rank = {top: PAYLOAD_PARTS.index(part) for part in PAYLOAD_PARTS for top in PART_TOPS[part]}
        payload = sorted(self.payload, key=lambda e: rank.get(e.info.name.split("/", 1)[0], 0))
        return [*self.control(), *self.extra_control, *payload]

    def write(
        self, out: Path, *, compress: str = "zstd", entries: list[Entry] | None = None, after: tuple[Entry, ...] = ()
    ) -> Path:
        """The package as OUT; `after`: a second archive behind the first one's end."""
        members = self.entries() if entries is None else entries
        with open(out, "wb") as raw:
            if compress == "gzip":
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                    write_tar(gz, members)
            else:
                with zstandard.ZstdCompressor(level=1, write_checksum=True).stream_writer(raw, closefd=False) as zw:
                    write_tar(zw, members)
                    if after:
                        write_tar(zw, list(after))
        return out


def write_tar(out: Writable, entries: list[Entry]) -> None:
    written = 0
    for e in entries:
        header = bytearray(e.info.tobuf(e.format, "utf-8", "surrogateescape"))
        if e.bad_checksum:
            header[-BLOCK + 136] ^= 0x01  # one bit of the mtime, the checksum left as it was
        out.write(bytes(header))
        written += len(header)
        if isinstance(e.data, Zeros):
            zeros = bytes(CHUNK)
            left = e.data.size
            while left:
                written += out.write(zeros[: min(left, CHUNK)])
                left -= min(left, CHUNK)
            size = e.data.size
        else:
            out.write(e.data)
            written += len(e.data)
            size = len(e.data)
        pad = -size % BLOCK
        out.write(bytes(pad))
        written += pad
    end = 2 * BLOCK + (-(written + 2 * BLOCK) % tarfile.RECORDSIZE)
    out.write(bytes(end))
