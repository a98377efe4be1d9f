"""The names, JSON documents and name grammars of package format v1.

The grammars here are the rule for every value of a package that later becomes part of
a path or a line a boot loader reads: `name_problem` (package name, variant),
`release_problem` (kernel release, source version), `module_name_problem` and
`member_problem` (a payload path). Each returns why a value is refused, or None."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 1
METADATA = "metadata.json"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CONTROL = (METADATA, MANIFEST, SIGNATURE)
SUFFIX = ".tar.zst"

# Payload folders: setup-agnostic, placed by `install` on the target.
KERNEL_DIR = "kernel"  # vmlinuz, System.map, config
MODULES_DIR = "modules"  # the contents of lib/modules/<release>/ (depmod runs at install)
HEADERS_DIR = "headers"  # enough of the tree to build out-of-tree modules
PAYLOAD_TOPS = (KERNEL_DIR, MODULES_DIR, HEADERS_DIR)
# A binhost publishes a package as two parts, each a package stream of its own with the
# same control members (so each is verified alone against the one signed manifest) and
# the payload of some top folders: what a binary-only install needs, and the headers.
WHOLE, KERNEL_PART, HEADERS_PART = "whole", "kernel", "headers"
PART_TOPS = {WHOLE: PAYLOAD_TOPS, KERNEL_PART: (KERNEL_DIR, MODULES_DIR), HEADERS_PART: (HEADERS_DIR,)}
# The package file holds the parts in this order, each in a zstd frame of its own: an
# install that places no headers tree stops reading where the headers begin, and the
# writer can compress the headers while the rest is still being built.
PAYLOAD_PARTS = (KERNEL_PART, HEADERS_PART)
_PART_OF_TOP = {top: part for part in PAYLOAD_PARTS for top in PART_TOPS[part]}
IMAGE = f"{KERNEL_DIR}/vmlinuz"
KERNEL_FILES = (IMAGE, f"{KERNEL_DIR}/System.map", f"{KERNEL_DIR}/config")  # what install reads by name
FILE_MODES = (0o644, 0o755)  # the only modes the writer records

# A kernel release is at most 64 bytes (the kernel's __NEW_UTS_LEN); names join a
# release and an arch in file names, which stay well below 255 bytes.
MAX_NAME = 64
RELEASE_RE = re.compile(r"[0-9][A-Za-z0-9._+-]{0,63}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MODULE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PATH = 4096  # PATH_MAX
MAX_COMPONENT = 255  # NAME_MAX
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def part_of(name: str) -> str:
    """The part (PAYLOAD_PARTS) a payload member belongs to, by its top folder."""
    return _PART_OF_TOP[name.split("/", 1)[0]]


def payload_order(name: str) -> tuple[int, str]:
    """Where a payload member goes in a package file: its part's frame, then by path."""
    return PAYLOAD_PARTS.index(part_of(name)), name


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def name_problem(value: str) -> str | None:
    """Why a package name or variant is refused: letters, digits, `.`, `_`, `-`, starting
    with a letter or digit, at most 64 characters, no `..`."""
    if not NAME_RE.fullmatch(value) or ".." in value:
        return f"{_shown(value)} is not a plain name (letters, digits, . _ -; at most {MAX_NAME})"
    return None


def release_problem(value: str) -> str | None:
    """Why a kernel release (`uname -r`) or source version is refused: a digit, then
    letters, digits, `.`, `_`, `+`, `-`; at most 64 characters; no `..`."""
    if not RELEASE_RE.fullmatch(value) or ".." in value:
        return f"{_shown(value)} is not a kernel release (a digit, then letters, digits, . _ + -; at most {MAX_NAME})"
    return None


def module_name_problem(value: str) -> str | None:
    if not MODULE_RE.fullmatch(value):
        return f"{_shown(value)} is not a module name"
    return None


UNNORMALIZED = re.compile(r"(?:^|/)\.{1,2}(?:/|$)|//|/$")


def member_problem(name: str) -> str | None:
    """Why a payload path may not be written under a root: it must be relative and
    normalized, inside kernel/, modules/ or headers/, valid UTF-8 without control
    characters or backslashes, within PATH_MAX and NAME_MAX."""
    if not name or name[0] == "/":
        return "absolute or empty path"
    if CONTROL_CHARS.search(name) or "\\" in name:
        return "a control character or backslash in the path"
    if UNNORMALIZED.search(name):
        return "path is not normalized or leaves the package"
    top, slash, _ = name.partition("/")
    if top not in PAYLOAD_TOPS or not slash:
        return f"not inside {', '.join(PAYLOAD_TOPS)}"
    try:
        encoded = name.encode()
    except UnicodeEncodeError:
        return "path is not UTF-8"
    if len(encoded) > MAX_PATH or (len(encoded) > MAX_COMPONENT and max(map(len, encoded.split(b"/"))) > MAX_COMPONENT):
        return "path longer than PATH_MAX or a component longer than NAME_MAX"
    return None


def package_filename(name: str, release: str, arch: str, variant: str = "") -> str:
    return f"{name}-{release}-{arch}{'+' + variant if variant else ''}{SUFFIX}"


_STRING = json.JSONEncoder(ensure_ascii=False)  # a str alone: the C string encoder


def canonical_json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class Metadata:
    name: str
    variant: str
    kernel_release: str
    version: str
    arch: str
    recipe_sha256: str
    config_sha256: str
    source: dict[str, str]
    toolchain: dict[str, str]
    build_date: int  # SOURCE_DATE_EPOCH: the source's own date, so rebuilds are identical
    sizes: dict[str, int]  # payload bytes per folder, and "files"
    image: str
    modules: list[str] = field(default_factory=list)  # module names (without .ko)
    extra: dict[str, Any] = field(default_factory=dict)  # signers, test, config (schema.py)
    format: int = FORMAT
    distkernel: str = ""

    @property
    def filename(self) -> str:
        return package_filename(self.name, self.kernel_release, self.arch, self.variant)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int
    mode: int


@dataclass(frozen=True)
class Manifest:
    metadata_sha256: str
    files: dict[str, FileEntry]
    links: dict[str, str]  # path -> target (relative)

    def to_bytes(self) -> bytes:
        """canonical_json of the manifest, spelled out: the same bytes, without the
        pure-Python indenting encoder (a manifest has thousands of entries)."""
        enc = _STRING.encode
        files = ",\n".join(
            f'  {enc(p)}: {{\n   "mode": {int(e.mode)},\n   "sha256": {enc(e.sha256)},\n   "size": {int(e.size)}\n  }}'
            for p, e in sorted(self.files.items())
        )
        links = ",\n".join(f"  {enc(p)}: {enc(t)}" for p, t in sorted(self.links.items()))
        text = (
            "{\n"
            + (f' "files": {{\n{files}\n }},\n' if files else ' "files": {},\n')
            + f' "format": {FORMAT},\n'
            + (f' "links": {{\n{links}\n }},\n' if links else ' "links": {},\n')
            + f' "metadata_sha256": {enc(self.metadata_sha256)}\n}}\n'
        )
        return text.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Unchecked: the reader parses with schema.parse_manifest."""
        doc = json.loads(data)
        files = {p: FileEntry(**e) for p, e in doc["files"].items()}
        return cls(doc["metadata_sha256"], files, dict(doc["links"]))
