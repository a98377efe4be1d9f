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
# What a package's name and variant, and its release, may hold to become part of a file
# name in packages/ ('+' separates the variant, so names never hold one).
PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PLAIN_RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")
UNTRUSTED_FIX = "trust the key that signs it"


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


def name_problem(name: str, variant: str, arch: str, release: str, version: str) -> str | None:
    """Why a package's names may not become a file name in packages/ (a plain name each)."""
    for field_name, value, rule in (
        ("name", name, PLAIN_NAME_RE),
        ("arch", arch, PLAIN_NAME_RE),
        ("kernel_release", release, PLAIN_RELEASE_RE),
        ("version", version, PLAIN_RELEASE_RE),
    ):
        if not rule.match(value) or ".." in value:
            return f"{field_name} {value[:80]!r} is not a plain name"
    if variant and (not PLAIN_NAME_RE.match(variant) or ".." in variant):
        return f"variant {variant[:80]!r} is not a plain name"
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
    if why := name_problem(entry.name, entry.variant, entry.arch, entry.kernel_release, entry.version):
        raise UserError(f"{where}: package entry {why}: refusing the whole index")
    if why := path_problem(entry.path):
        raise UserError(f"{where}: {why}: refusing the whole index")
    return entry


@dataclass(frozen=True)
class SignedIndex:
    index: Index
    sha256: str  # of the signed bytes
    signer: str  # fingerprint of the key that signed it: the binhost's identity


def read_index(data: bytes, where: str, trusted: list[TrustedKey], fix: str = UNTRUSTED_FIX) -> SignedIndex:
    """Check the signature against the trusted keys, then every entry. Anything wrong
    is a UserError naming `where`; `fix` says how this command's user trusts a key."""
    try:
        outer = json.loads(data)
        doc, signature = outer["signed"], outer["signature"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise UserError(f"{where}: not a distkernel repo index") from None
    signed = canonical_json(doc)
    key, why = check_signature(signed, canonical_json(signature), trusted)
    if key is None:
        raise UserError(f"{where}: {why}; refusing the index (if it was not tampered with: {fix})")
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise UserError(f"{where}: unknown index format; upgrade distkernel")
    serial, packages = doc.get("serial"), doc.get("packages")
    if not isinstance(serial, int) or isinstance(serial, bool) or not isinstance(packages, list):
        raise UserError(f"{where}: malformed index (serial, packages)")
    if not 1 <= serial < 2**63:  # repo init starts at 1; the serials file stores it as JSON
        raise UserError(f"{where}: serial {serial} is out of range; republish with `distkernel repo add`")
    index = Index(serial, tuple(_entry(p, where) for p in packages))
    return SignedIndex(index, cache.sha256_bytes(signed), key.fingerprint)


def parse_index(data: bytes, where: str, trusted: list[TrustedKey]) -> tuple[Index, str]:
    """The index and the sha256 of its signed bytes (see read_index)."""
    got = read_index(data, where, trusted)
    return got.index, got.sha256


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


def _addable(pkg: Path, repo_key: TrustedKey) -> Metadata:
    """A package's metadata when clients can take it: it matches its manifest, its
    names make a plain file name in packages/, and it is signed (by the repo's key, the
    signature checks; by another key, clients check it against the keys they trust)."""
    result = check_package(pkg)  # the one reader: refuses a damaged package in one line
    meta = result.metadata
    if why := name_problem(meta.name, meta.variant, meta.arch, meta.kernel_release, meta.version):
        raise UserError(f"{pkg}: its metadata's {why}; not adding it (rebuild it with a plain name)")
    if why := path_problem(f"{PACKAGES}/{meta.filename}"):
        raise UserError(f"{pkg}: its metadata gives the {why}; not adding it")
    if result.signature is None:
        raise UserError(
            f"{pkg}: not signed, and every client refuses unsigned packages; sign it first: "
            f"`distkernel sign {pkg} --key {repo_key.origin}`"
        )
    key, why = check_signature(result.manifest.to_bytes(), result.signature, [repo_key])
    if key is None and "not trusted" not in why:
        raise UserError(f"{pkg}: {why}; not adding it (sign it again with `distkernel sign {pkg} --key KEY`)")
    return meta


def add_packages(repo: Path, packages: list[Path], key: Path | None = None) -> Index:
    """Copy packages in (each checked first) and publish a new index, serial + 1.
    A package with the same file name replaces the old entry."""
    key = _own_key(repo, key)
    index = read_own_index(repo, key)
    public = load_package_private(key).public_key()
    repo_key = TrustedKey(public_fingerprint(public), public, key)
    # All checked before any is copied: a bad one changes nothing.
    metas = [(pkg, _addable(pkg, repo_key)) for pkg in packages]
    entries = {e.path: e for e in index.entries}
    for pkg, meta in metas:
        path = f"{PACKAGES}/{meta.filename}"
        cache.atomic_copy(pkg, repo / path)
        size, digest = (repo / path).stat().st_size, cache.sha256_file(repo / path)
        entries[path] = Entry(meta.name, meta.variant, meta.arch, meta.kernel_release, meta.version, path, size, digest)
    new = replace(index, serial=index.serial + 1, entries=tuple(entries[p] for p in sorted(entries)))
    _write(repo, new, key)
    return new
