"""Read a package once for install: the zstd tool decompresses it into memory (3x
faster than the Python binding here), a minimal walk over the GNU tar headers finds the
members, each is checked exactly as `verify_package` does (same check_member), and only
when every member passed are files written: kernel/ into a work folder, modules/ and
headers/ into their staged trees."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

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
from distkernel.build.package.reader import VerifyResult, check_member
from distkernel.core.errors import UserError
from distkernel.core.tools import require

BLOCK = 512


@dataclass(frozen=True)
class Member:
    info: tarfile.TarInfo
    offset: int  # of its data in the decompressed archive


@dataclass
class Unpacked:
    result: VerifyResult
    data: memoryview
    members: list[Member]


def _field(header: memoryview, start: int, end: int) -> str:
    raw = bytes(header[start:end])
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(header: memoryview, start: int, end: int) -> int:
    raw = bytes(header[start:end]).split(b"\0", 1)[0].strip()
    return int(raw, 8) if raw else 0


def walk(data: memoryview) -> list[Member]:
    """Members of an uncompressed GNU/ustar tar (long names from 'L'/'K' records)."""
    out: list[Member] = []
    pos, long_name, long_link = 0, None, None
    while pos + BLOCK <= len(data):
        header = data[pos : pos + BLOCK]
        if not any(header):
            break
        size, kind = _number(header, 124, 136), bytes(header[156:157]) or b"0"
        body = pos + BLOCK
        pos = body + (size + BLOCK - 1) // BLOCK * BLOCK
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            text = bytes(data[body : body + size]).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            long_name, long_link = (text, long_link) if kind == tarfile.GNUTYPE_LONGNAME else (long_name, text)
            continue
        info = tarfile.TarInfo(long_name or _field(header, 0, 100))
        info.mode, info.size, info.type = _number(header, 100, 108), size, kind
        info.linkname = long_link or _field(header, 157, 257)
        long_name = long_link = None
        out.append(Member(info, body))
    return out


def _unreadable(path: Path, why: str) -> UserError:
    return UserError(f"{path}: not a readable distkernel package ({why}); rebuild or re-download it")


def scan_package(path: Path) -> Unpacked:
    """Decompress and check every member; nothing is written."""
    zstd = require("zstd")
    fd = os.memfd_create("distkernel-package")  # the tool writes straight into memory we map
    with os.fdopen(fd, "w+b") as out:
        proc = subprocess.run([zstd, "-dcq", path], stdout=out, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unreadable"]
            raise _unreadable(path, why[0])
        size = out.seek(0, os.SEEK_END)
        data = memoryview(mmap.mmap(out.fileno(), size, prot=mmap.PROT_READ)) if size else memoryview(b"")
    try:
        members = walk(data)
    except ValueError:  # a size or mode field that is not octal
        raise _unreadable(path, "bad tar header") from None
    result = VerifyResult(path)
    names = [m.info.name for m in members[:3]]
    if names[:2] != [METADATA, MANIFEST]:
        raise UserError(f"{path}: not a distkernel package ({METADATA} and {MANIFEST} must come first)")
    meta, manifest = (data[m.offset : m.offset + m.info.size] for m in members[:2])
    try:
        result.metadata = Metadata.from_json(json.loads(bytes(meta)))
        result.manifest = Manifest.from_bytes(bytes(manifest))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(f"{path}: corrupt metadata or manifest ({e}); rebuild or re-download it") from None
    if result.manifest.metadata_sha256 != hashlib.sha256(meta).hexdigest():
        result.problems.append(f"{METADATA}: sha256 differs from the manifest")
    first = 2
    if len(names) > 2 and names[2] == SIGNATURE:
        sig = members[2]
        result.signature = bytes(data[sig.offset : sig.offset + sig.info.size])
        first = 3
    seen: set[str] = set()
    payload = members[first:]
    for m in payload:
        name = m.info.name
        if name in seen or name in CONTROL:
            result.problems.append(f"{name}: appears twice")
        seen.add(name)
        body = data[m.offset : m.offset + m.info.size] if m.info.isfile() else None
        check_member(result, result.manifest, m.info, body)
    for missing in sorted((set(result.manifest.files) | set(result.manifest.links)) - seen):
        result.problems.append(f"{missing}: in the manifest but not in the package")
    return Unpacked(result, data, payload)


@dataclass(frozen=True)
class Destinations:
    kernel: Path
    modules: Path
    headers: Path


def write_payload(unpacked: Unpacked, dest: Destinations) -> None:
    """Write the checked members (never through a link: O_EXCL|O_NOFOLLOW, fresh folders)."""
    assert unpacked.result.ok and unpacked.result.manifest is not None
    manifest = unpacked.result.manifest
    tops = {KERNEL_DIR: str(dest.kernel), MODULES_DIR: str(dest.modules), HEADERS_DIR: str(dest.headers)}
    made: set[str] = set()
    for m in unpacked.members:
        top, _, rest = m.info.name.partition("/")
        out = f"{tops[top]}/{rest}"
        parent = os.path.dirname(out)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if m.info.issym():
            os.symlink(manifest.links[m.info.name], out)
            continue
        mode = manifest.files[m.info.name].mode & 0o755
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            view = unpacked.data[m.offset : m.offset + m.info.size]
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
