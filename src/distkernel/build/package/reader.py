"""Read a package as a stream: the metadata alone (first member, nothing else is
decompressed), or every member checked against the manifest."""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import zstandard

from distkernel.build.package.format import (
    CONTROL,
    HEADERS_DIR,
    KERNEL_DIR,
    MANIFEST,
    METADATA,
    MODULES_DIR,
    SIGNATURE,
    Manifest,
    Metadata,
)
from distkernel.core.errors import UserError

PAYLOAD_TOPS = (KERNEL_DIR, MODULES_DIR, HEADERS_DIR)
T = TypeVar("T")


@contextlib.contextmanager
def open_stream(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UserError(f"{path}: cannot open package: {e.strerror}") from None
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            yield tar
    except (zstandard.ZstdError, tarfile.TarError, EOFError) as e:
        raise UserError(f"{path}: not a readable distkernel package ({e}); rebuild or re-download it") from None
    finally:
        raw.close()


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    return f.read() if f else b""


def _parse(path: Path, member: str, parse: Callable[[bytes], T], data: bytes) -> T:
    """A control member parsed, or one UserError naming the package and the member."""
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(f"{path}: {member} is corrupt ({e!r}); rebuild or re-download the package") from None


def _metadata(data: bytes) -> Metadata:
    return Metadata.from_json(json.loads(data))


def read_metadata(path: Path) -> Metadata:
    """The metadata, reading only the first member of the stream."""
    with open_stream(path) as tar:
        first = tar.next()
        if first is None or first.name != METADATA:
            raise UserError(f"{path}: not a distkernel package (first member is not {METADATA})")
        return _parse(path, METADATA, _metadata, _read(tar, first))


def unsafe_path(name: str) -> str | None:
    """Why a member path may not be written under a root, or None."""
    if name.startswith("/") or "\\" in name:
        return "absolute or odd path"
    norm = posixpath.normpath(name)
    if norm != name or norm.startswith("../") or norm == "..":
        return "path is not normalized or leaves the package"
    if name.split("/", 1)[0] not in PAYLOAD_TOPS:
        return f"outside {', '.join(PAYLOAD_TOPS)}"
    return None


def link_escapes(name: str, target: str) -> bool:
    """A link must stay in its own top folder: install places kernel/, modules/ and
    headers/ in different places, so modules/x -> ../headers/y would leave the root's
    modules dir."""
    if target.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved.split("/", 1)[0] != name.split("/", 1)[0]


def through_link(name: str, links: dict[str, str]) -> str | None:
    """The symlink among `name`'s parent folders, if any: writing there would follow it."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in links:
            return parent
    return None


@dataclass
class VerifyResult:
    path: Path
    metadata: Metadata | None = None
    manifest: Manifest | None = None
    signature: bytes | None = None
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_member(
    result: VerifyResult, manifest: Manifest, info: tarfile.TarInfo, data: bytes | memoryview | None
) -> None:
    name = info.name
    why = unsafe_path(name)
    if why:
        result.problems.append(f"{name}: {why}")
    elif through_link(name, manifest.links):
        result.problems.append(f"{name}: lies below the symlink {through_link(name, manifest.links)}")
    elif info.issym():
        if manifest.links.get(name) != info.linkname:
            result.problems.append(f"{name}: symlink not in the manifest")
        elif link_escapes(name, info.linkname):
            result.problems.append(f"{name}: symlink escapes the package ({info.linkname})")
    elif not info.isfile():
        result.problems.append(f"{name}: not a regular file or symlink (type {info.type!r})")
    elif info.mode & 0o7000:
        result.problems.append(f"{name}: setuid/setgid/sticky mode {oct(info.mode)}")
    elif name not in manifest.files:
        result.problems.append(f"{name}: not in the manifest")
    else:
        entry = manifest.files[name]
        assert data is not None
        if info.size != entry.size or len(data) != entry.size:
            result.problems.append(f"{name}: size {len(data)} differs from the manifest's {entry.size}")
        elif hashlib.sha256(data).hexdigest() != entry.sha256:
            result.problems.append(f"{name}: sha256 differs from the manifest")
        result.files += 1
        result.bytes += len(data)


def verify_package(path: Path) -> VerifyResult:
    """Check every member against the manifest; problems are listed, not raised."""
    result = VerifyResult(path)
    seen: set[str] = set()
    with open_stream(path) as tar:
        meta_bytes = b""
        for index, info in enumerate(tar):
            if index == 0 and info.name == METADATA:
                meta_bytes = _read(tar, info)
                result.metadata = _parse(path, METADATA, _metadata, meta_bytes)
                continue
            if index == 1 and info.name == MANIFEST:
                result.manifest = _parse(path, MANIFEST, Manifest.from_bytes, _read(tar, info))
                if result.manifest.metadata_sha256 != hashlib.sha256(meta_bytes).hexdigest():
                    result.problems.append(f"{METADATA}: sha256 differs from the manifest")
                continue
            if index == 2 and info.name == SIGNATURE:
                result.signature = _read(tar, info)
                continue
            if result.manifest is None:
                raise UserError(f"{path}: not a distkernel package ({METADATA} and {MANIFEST} must come first)")
            if info.name in seen or info.name in CONTROL:
                result.problems.append(f"{info.name}: appears twice")
            seen.add(info.name)
            data = _read(tar, info) if info.isfile() else None
            check_member(result, result.manifest, info, data)
    if result.manifest is None:
        raise UserError(f"{path}: not a distkernel package (no {MANIFEST})")
    for missing in sorted((set(result.manifest.files) | set(result.manifest.links)) - seen):
        result.problems.append(f"{missing}: in the manifest but not in the package")
    return result
