"""The binhost's index: one file, `index.json`, holding the signed document (a serial
that only grows, and one entry per package: name, release, arch, variant, path, size,
sha256) and its Ed25519 signature. One file, so a reader never sees an index and a
signature from two different updates."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from distkernel.build.package.format import SUFFIX, Metadata, canonical_json
from distkernel.build.package.reader import check_package
from distkernel.build.trust.keys import load_package_private, public_fingerprint
from distkernel.build.trust.signing import TrustedKey, check_signature, signer
from distkernel.core import cache
from distkernel.core.errors import UserError

INDEX = "index.json"
PACKAGES = "packages"
CONFIG = ".distkernel-repo.json"  # the repo's own settings: never served
INDEX_FORMAT = 1
# Where an entry may point: a plain file name directly in packages/.
ENTRY_PATH_RE = re.compile(rf"^{PACKAGES}/[A-Za-z0-9][A-Za-z0-9._+-]*{re.escape(SUFFIX)}$")


@dataclass(frozen=True)
class Entry:
    name: str
    variant: str
    arch: str
    kernel_release: str
    version: str
    path: str  # relative to the repo: packages/FILE
    size: int
    sha256: str


@dataclass(frozen=True)
class Index:
    serial: int
    entries: tuple[Entry, ...]

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {"format": INDEX_FORMAT, "serial": self.serial, "packages": [asdict(e) for e in self.entries]}
        )


def path_problem(path: str) -> str | None:
    """Why an entry's path may not be fetched (it would leave the repo's packages/)."""
    if not ENTRY_PATH_RE.match(path) or ".." in path.split("/"):
        return f"path {path!r} is not a package file in {PACKAGES}/"
    return None


def _entry(raw: Any, where: str) -> Entry:
    try:
        entry = Entry(**raw)
    except TypeError as e:
        raise UserError(f"{where}: malformed package entry ({e})") from None
    types = {"size": int}
    for name, value in asdict(entry).items():
        if not isinstance(value, types.get(name, str)) or isinstance(value, bool):
            raise UserError(f"{where}: package entry field {name!r} has the wrong type")
    if why := path_problem(entry.path):
        raise UserError(f"{where}: {why}: refusing the whole index")
    return entry


def parse_index(data: bytes, where: str, trusted: list[TrustedKey]) -> tuple[Index, str]:
    """Check the signature against the trusted keys, then every entry; the index and
    the sha256 of its signed bytes. Anything wrong is a UserError naming `where`."""
    try:
        outer = json.loads(data)
        doc, signature = outer["signed"], outer["signature"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{where}: not a distkernel repo index") from None
    signed = canonical_json(doc)
    key, why = check_signature(signed, canonical_json(signature), trusted)
    if key is None:
        raise UserError(f"{where}: {why}; refusing the index (was it tampered with, or is --key wrong?)")
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise UserError(f"{where}: unknown index format; upgrade distkernel")
    serial, packages = doc.get("serial"), doc.get("packages")
    if not isinstance(serial, int) or isinstance(serial, bool) or not isinstance(packages, list):
        raise UserError(f"{where}: malformed index (serial, packages)")
    index = Index(serial, tuple(_entry(p, where) for p in packages))
    return index, cache.sha256_bytes(signed)


# The publishing side: a folder served as is.


def _config(repo: Path) -> dict[str, str]:
    try:
        doc = json.loads((repo / CONFIG).read_text())
        return {"key": str(doc["key"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"{repo}: not a distkernel repo; create it with `distkernel repo init {repo} --key KEY`"
        ) from None


def _write(repo: Path, index: Index, key: Path) -> None:
    sign, _ = signer(key)
    signed = index.signed_bytes()
    doc = {"signed": json.loads(signed), "signature": json.loads(sign(signed))}
    cache.atomic_write_bytes(repo / INDEX, canonical_json(doc))


def _own_key(repo: Path, key: Path | None) -> Path:
    return key.resolve() if key else Path(_config(repo)["key"])


def read_own_index(repo: Path, key: Path) -> Index:
    """The repo's current index, checked against the repo's own key."""
    public = load_package_private(key).public_key()
    trusted = [TrustedKey(public_fingerprint(public), public, key)]
    try:
        data = (repo / INDEX).read_bytes()
    except OSError as e:
        raise UserError(f"{repo / INDEX}: cannot read it ({e.strerror}); restore it from a backup") from None
    return parse_index(data, str(repo / INDEX), trusted)[0]


def init_repo(repo: Path, key: Path) -> Index:
    """An empty repo signed by KEY (the key stays where it is; only its path is kept)."""
    if (repo / INDEX).exists():
        raise UserError(f"{repo}: already a repo (has {INDEX}); add packages with `distkernel repo add`")
    signer(key)  # a readable Ed25519 key, or a clear error
    (repo / PACKAGES).mkdir(parents=True, exist_ok=True)
    cache.atomic_write_text(repo / CONFIG, json.dumps({"key": str(key.resolve())}) + "\n", mode=0o600)
    index = Index(1, ())
    _write(repo, index, key.resolve())
    return index


def add_packages(repo: Path, packages: list[Path], key: Path | None = None) -> Index:
    """Copy packages in (each verified first) and publish a new index, serial + 1.
    A package with the same file name replaces the old entry."""
    key = _own_key(repo, key)
    index = read_own_index(repo, key)
    metas: list[tuple[Path, Metadata]] = []
    for pkg in packages:  # all verified before any is copied: a bad one changes nothing
        metas.append((pkg, check_package(pkg).metadata))
    entries = {e.path: e for e in index.entries}
    for pkg, meta in metas:
        path = f"{PACKAGES}/{meta.filename}"
        cache.atomic_copy(pkg, repo / path)
        size, digest = (repo / path).stat().st_size, cache.sha256_file(repo / path)
        entries[path] = Entry(meta.name, meta.variant, meta.arch, meta.kernel_release, meta.version, path, size, digest)
    new = replace(index, serial=index.serial + 1, entries=tuple(entries[p] for p in sorted(entries)))
    _write(repo, new, key)
    return new
