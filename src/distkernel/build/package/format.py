"""The names and JSON documents of package format v1."""

from __future__ import annotations

import json
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


def package_filename(name: str, release: str, arch: str, variant: str = "") -> str:
    return f"{name}-{release}-{arch}{'+' + variant if variant else ''}{SUFFIX}"


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
    extra: dict[str, Any] = field(default_factory=dict)  # room for later stages (signer, features)
    format: int = FORMAT
    distkernel: str = ""

    @property
    def filename(self) -> str:
        return package_filename(self.name, self.kernel_release, self.arch, self.variant)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Metadata:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


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
        return canonical_json(
            {
                "format": FORMAT,
                "metadata_sha256": self.metadata_sha256,
                "files": {p: asdict(e) for p, e in sorted(self.files.items())},
                "links": dict(sorted(self.links.items())),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        files = {p: FileEntry(**e) for p, e in doc["files"].items()}
        return cls(doc["metadata_sha256"], files, dict(doc["links"]))
