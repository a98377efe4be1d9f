"""The one strict reader of packages: `inspect`, `verify`, `install`, `test`, `repo add`
and `fetch` all judge a package with `check_package`, so they never disagree.

Public API (stable; the hostile-input suite drives it):

- `check_package(path, sink=None, *, expect=None, part=WHOLE) -> VerifiedPackage`: read the whole
  package once as a stream and raise `PackageError` (a UserError: one line, exit 2) at
  the first problem. In order: the zstd frame and GNU tar headers (tarstream.py);
  `metadata.json` first, then `manifest.json`, then optionally `manifest.sig` and
  nowhere else; metadata and manifest against their closed schema (schema.py); the
  metadata's sha256 in the manifest; what the two declare, checked together
  (declared.py: paths, symlinks, kernel files, sizes, modules); then every payload
  member, whose header must match its manifest entry (kind, size, mode, link target)
  before any of its data is read or handed on, whose data must hash to the manifest's
  sha256, and which may appear once; nothing in the manifest may be missing; the
  kernel image must be a kernel of the metadata's arch and release (image.py).
  Memory stays bounded whatever the input: data is hashed as it streams.
- `sink`: receives each member right after its header passed (`file` returns a
  writer fed the data as it streams, then closed; `symlink`; `directory`). A package
  refused later leaves what the sink wrote: the caller stages it and throws the
  staging away on PackageError (install does so through its transaction).
- `expect`: a VerifiedPackage from an earlier pass; the package is refused if its
  manifest or signature changed since (a file swapped between two reads).
- `part`: a binhost publishes each package as two parts (format.PART_TOPS), each with
  the same control members and the payload of some top folders: `kernel` (kernel/ and
  modules/) and `headers`. A part must hold every file and symlink its manifest lists
  under its own folders, and nothing else; the default, `whole`, is the package file
  as built. Every check above applies to a part as to a whole package.
- `take`: the part the caller wants out of the file (default: all of `part`). Members of
  the other folders that come before the last member taken must be where the manifest
  says, with its kind and size, but their data is passed over unread: neither hashed
  nor handed to the sink. Reading ends at the first member of another part after the
  last one taken: what follows (in a package file as the writer orders it, the headers
  after the kernel and modules) is not even decompressed. An install that places no
  headers tree does not check what it does not write; what it writes is checked as
  always, and must all be there.
- `read_head(path)`: the control members alone, with every check that needs no
  payload; for reading a package this program just wrote. It is no verdict on the
  payload: for input from elsewhere, use check_package.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from distkernel.build.package.declared import check_declared
from distkernel.build.package.format import (
    CONTROL,
    CONTROL_CHARS,
    IMAGE,
    MANIFEST,
    METADATA,
    PART_TOPS,
    SIGNATURE,
    WHOLE,
    Manifest,
    Metadata,
    member_problem,
)
from distkernel.build.package.image import ImageCheck, ImageInfo
from distkernel.build.package.schema import MAX_SIGNATURE, SchemaError, parse_manifest, parse_metadata
from distkernel.build.package.tarstream import Header, TarStream, Unreadable
from distkernel.core.errors import UserError


class PackageError(UserError):
    """A package refused: one line naming the file and what is wrong (exit 2)."""


class FileWriter(Protocol):
    def write(self, data: memoryview) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where check_package hands members that passed their header check."""

    def file(self, name: str, mode: int) -> FileWriter: ...

    def symlink(self, name: str, target: str) -> None: ...

    def directory(self, name: str) -> None: ...


@dataclass(frozen=True)
class VerifiedPackage:
    path: Path
    metadata: Metadata
    manifest: Manifest
    manifest_sha256: str
    signature: bytes | None
    files: int = 0  # payload files read (0 from read_head)
    bytes: int = 0
    image: ImageInfo | None = None  # None from read_head, and for the headers part
    problems: list[str] = field(default_factory=list)  # always empty here; the trust gate refuses any
    part: str = WHOLE  # which payload folders it holds (format.PART_TOPS)
    take: str = ""  # which of them are read and handed on ("": all of `part`)
    dirs: frozenset[str] = frozenset()  # the folders the manifest implies (declared.py)
    # manifest.json as read: the manifest's canonical spelling (the reader holds it to
    # that), which is what a signature covers; checked as read, never spelled again.
    manifest_bytes: builtins.bytes = b""  # (`bytes` alone: the field)

    @property
    def taken(self) -> str:
        return self.take or self.part

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Head:
    metadata: Metadata
    manifest: Manifest
    manifest_sha256: str
    signature: bytes | None
    dirs: frozenset[str]
    first: Header | None  # the first payload member's header
    manifest_bytes: bytes


def _error(path: Path, message: str) -> PackageError:
    """One line whatever the package holds: control characters from names are escaped."""
    return PackageError(CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", f"{path}: {message}"))


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise UserError(f"{path}: cannot open package: {e.strerror}") from None


def _control(tar: TarStream, name: str, limit: int) -> bytes:
    header = tar.next()
    if header is None or header.name != name or header.kind != "file":
        raise SchemaError(f"not a distkernel package ({METADATA} and {MANIFEST} must come first)")
    if header.size > limit:
        raise SchemaError(f"{name}: larger than {limit} bytes")
    return tar.read_all(header.size)


def _head(tar: TarStream, expect: VerifiedPackage | None = None) -> _Head:
    """The control members, judged; with EXPECT (the same bytes judged before), its
    judgement is taken instead of parsing the same metadata and manifest again."""
    meta_raw = _control(tar, METADATA, 1 << 20)
    manifest_raw = _control(tar, MANIFEST, 64 << 20)
    manifest_sha256 = hashlib.sha256(manifest_raw).hexdigest()
    meta_sha256 = hashlib.sha256(meta_raw).hexdigest()
    if expect is not None and (manifest_sha256, meta_sha256) == (
        expect.manifest_sha256,
        expect.manifest.metadata_sha256,
    ):
        metadata, manifest, dirs = expect.metadata, expect.manifest, expect.dirs
    else:
        metadata = parse_metadata(meta_raw)
        manifest = parse_manifest(manifest_raw)
        if manifest.metadata_sha256 != meta_sha256:
            raise SchemaError(f"{METADATA}: sha256 differs from the manifest")
        dirs = check_declared(metadata, manifest)
    signature = None
    first = tar.next()
    if first is not None and first.name == SIGNATURE and first.kind == "file":
        if first.size > MAX_SIGNATURE:
            raise SchemaError(f"{SIGNATURE}: larger than {MAX_SIGNATURE} bytes")
        signature = tar.read_all(first.size)
        first = tar.next()
    return _Head(metadata, manifest, manifest_sha256, signature, dirs, first, manifest_raw)


def _headers(first: Header | None, tar: TarStream) -> Iterable[Header]:
    header = first
    while header is not None:
        yield header
        header = tar.next()


def _top(name: str) -> str:
    return name.split("/", 1)[0]


def _pass_over(tar: TarStream, h: Header, head: _Head) -> None:
    """A member that is not taken: only where the manifest has it, its data unread."""
    files, links = head.manifest.files, head.manifest.links
    if h.kind == "symlink" and links.get(h.name) == h.linkname:
        return
    if h.kind == "dir" and h.name in head.dirs:
        return
    entry = files.get(h.name)
    if h.kind != "file" or entry is None:
        raise SchemaError(f"{h.name}: a {h.kind} not in the manifest")
    if (h.size, h.mode) != (entry.size, entry.mode):
        raise SchemaError(f"{h.name}: size or mode differs from the manifest's")
    for _ in tar.chunks(h.size):
        pass


def _payload(tar: TarStream, head: _Head, sink: Sink | None, part: str, take: str) -> tuple[int, int, ImageInfo | None]:
    files, links = head.manifest.files, head.manifest.links
    tops, taken = PART_TOPS[part], PART_TOPS[take or part]
    seen: set[str] = set()
    count = total = 0
    image: ImageInfo | None = None
    # Taking a part of the file, reading ends at the first member of another part after
    # each of its own is in (the writer puts the parts one after the other): the rest is
    # neither decompressed nor judged. Anything behind its last member up to there is.
    left = sum(_top(n) in taken for n in (*files, *links)) if taken != tops else -1
    for h in _headers(head.first, tar):
        name = h.name
        if left == 0 and _top(name) in tops and _top(name) not in taken:
            tops = taken  # what was not read is not judged: only the part taken must be whole
            break
        if name in CONTROL:
            raise SchemaError(f"{name}: a second or misplaced control member")
        if name not in files and name not in links and (why := member_problem(name)):
            raise SchemaError(f"{name}: {why}")  # (the manifest's own names passed check_declared)
        if _top(name) not in tops:
            raise SchemaError(f"{name}: does not belong in the {part} part (only {', '.join(tops)})")
        if name in seen:
            raise SchemaError(f"{name}: appears twice")
        seen.add(name)
        if _top(name) not in taken:
            _pass_over(tar, h, head)
            continue
        if h.kind == "symlink":
            if links.get(name) != h.linkname:
                raise SchemaError(f"{name}: symlink not in the manifest (or another target)")
            if sink is not None:
                sink.symlink(name, h.linkname)
            left -= 1
            continue
        if h.kind == "dir":
            if name not in head.dirs:
                raise SchemaError(f"{name}: a folder that holds nothing in the manifest")
            if sink is not None:
                sink.directory(name)
            continue
        entry = files.get(name)
        if entry is None:
            raise SchemaError(f"{name}: not in the manifest")
        if h.size != entry.size:
            raise SchemaError(f"{name}: size {h.size} differs from the manifest's {entry.size}")
        if h.mode != entry.mode:
            odd = " (setuid/setgid/sticky)" if h.mode & 0o7000 else ""
            raise SchemaError(f"{name}: mode {oct(h.mode)}{odd} differs from the manifest's {oct(entry.mode)}")
        digest = hashlib.sha256()
        check = ImageCheck() if name == IMAGE else None
        out = sink.file(name, entry.mode) if sink is not None else None
        try:
            for chunk in tar.chunks(h.size):
                digest.update(chunk)
                if check is not None:
                    check.feed(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
        if digest.hexdigest() != entry.sha256:
            raise SchemaError(f"{name}: sha256 differs from the manifest")
        if check is not None:
            image = check.finish(head.metadata)
        count += 1
        total += h.size
        left -= 1
    missing = sorted(n for n in (set(files) | set(links)) - seen if _top(n) in tops)
    if missing:
        absent = sorted({_top(n) for n in missing} - {_top(n) for n in seen})
        hint = f" (it holds nothing of {', '.join(absent)}/: a part of a binhost's package?)" if absent else ""
        raise SchemaError(f"{missing[0]}: in the manifest but not in the package{hint}")
    # the manifest holds the image (check_declared), and a part with kernel/ read it
    assert image is not None or _top(IMAGE) not in taken
    return count, total, image


def check_package(
    path: Path,
    sink: Sink | None = None,
    *,
    expect: VerifiedPackage | None = None,
    part: str = WHOLE,
    take: str = "",
) -> VerifiedPackage:
    """The verdict on PATH (see the module's docstring); PackageError at the first problem."""
    with _open(path) as f:
        try:
            tar = TarStream(f)
            head = _head(tar, expect)
            if expect is not None and (expect.manifest_sha256, expect.signature) != (
                head.manifest_sha256,
                head.signature,
            ):
                raise SchemaError("changed since it was checked; run the command again")
            assert set(PART_TOPS[take or part]) <= set(PART_TOPS[part]), (take, part)
            count, total, image = _payload(tar, head, sink, part, take)
        except Unreadable as e:
            raise _error(path, f"not a readable distkernel package ({e}); rebuild or re-download it") from None
        except SchemaError as e:
            raise _error(path, f"refused: {e}; rebuild or re-download the package") from None
    return VerifiedPackage(
        path,
        head.metadata,
        head.manifest,
        head.manifest_sha256,
        head.signature,
        count,
        total,
        image,
        part=part,
        take=take,
        dirs=head.dirs,
        manifest_bytes=head.manifest_bytes,
    )


def read_head(path: Path, part: str = WHOLE, expect: VerifiedPackage | None = None) -> VerifiedPackage:
    """Metadata, manifest and signature, checked as far as they go without the payload
    (no files are read: `files`, `bytes` are 0 and `image` None). Not a verdict; PART
    is what a later check_package(..., expect=this) is to hold the stream to. EXPECT:
    as in _head (the same control bytes judged before are not parsed again)."""
    with _open(path) as f:
        try:
            head = _head(TarStream(f), expect)
        except Unreadable as e:
            raise _error(path, f"not a readable distkernel package ({e}); rebuild or re-download it") from None
        except SchemaError as e:
            raise _error(path, f"refused: {e}; rebuild or re-download the package") from None
    return VerifiedPackage(
        path,
        head.metadata,
        head.manifest,
        head.manifest_sha256,
        head.signature,
        part=part,
        dirs=head.dirs,
        manifest_bytes=head.manifest_bytes,
    )


def read_metadata(path: Path) -> Metadata:
    """The metadata of a package this program just wrote (read_head: no verdict)."""
    return read_head(path).metadata
