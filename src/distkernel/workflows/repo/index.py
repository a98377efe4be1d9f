"""The binhost's index: one file, `index.json`, holding the signed document (a serial
that only grows, and one entry per package: name, release, arch, variant, and the two
files it is published as, each with its size and sha256: the kernel part at `path`,
the headers part at `headers.path`; see parts.py) and its Ed25519 signature. One file,
so a reader never sees an index and a signature from two different updates.

Index format 1 (written before packages were split) is still read: its entries name the
whole package at `path` and have no `headers`. `repo add` on such a repo splits the
packages it holds and writes format 2."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from distkernel.build.package.format import SUFFIX, canonical_json
from distkernel.build.package.reader import VerifiedPackage, check_package, read_head
from distkernel.build.trust.keys import load_package_private, public_fingerprint
from distkernel.build.trust.signing import TrustedKey, check_signature, signer
from distkernel.core import cache
from distkernel.core.errors import UserError
from distkernel.workflows.repo.parts import HEADERS_INFIX, headers_name, split_package

INDEX = "index.json"
PACKAGES = "packages"
CONFIG = ".distkernel-repo.json"  # the repo's own settings: never served
INDEX_FORMAT = 2
OLD_FORMAT = 1  # whole packages, no headers part: still read
MAX_FILE = 1 << 36  # bytes: a package payload is at most 16 GiB before compression
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
# Where an entry may point: a plain file name directly in packages/.
ENTRY_PATH_RE = re.compile(rf"^{PACKAGES}/[A-Za-z0-9][A-Za-z0-9._+-]*{re.escape(SUFFIX)}$")
# What a package's name and variant, and its release, may hold to become part of a file
# name in packages/ ('+' separates the variant, so names never hold one).
PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PLAIN_RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")
UNTRUSTED_FIX = "trust the key that signs it"


@dataclass(frozen=True)
class Part:
    """One published file of a package."""

    path: str  # relative to the repo: packages/FILE
    size: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    name: str
    variant: str
    arch: str
    kernel_release: str
    version: str
    path: str  # relative to the repo: packages/FILE: the kernel part (the whole package in format 1)
    size: int
    sha256: str
    headers: Part | None = None  # the headers part; None only in a format-1 index

    @property
    def kernel(self) -> Part:
        return Part(self.path, self.size, self.sha256)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        if self.headers is None:
            del doc["headers"]
        return doc


@dataclass(frozen=True)
class Index:
    serial: int
    entries: tuple[Entry, ...]

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {"format": INDEX_FORMAT, "serial": self.serial, "packages": [e.to_json() for e in self.entries]}
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


def _file(fields: dict[str, Any], where: str, what: str) -> None:
    """A published file's path, size and sha256, each of its type and within bounds."""
    for name in ("path", "size", "sha256"):
        value = fields[name]
        if not isinstance(value, int if name == "size" else str) or isinstance(value, bool):
            raise UserError(f"{where}: {what} field {name!r} has the wrong type")
    if not 0 < fields["size"] <= MAX_FILE:
        raise UserError(f"{where}: {what} size {fields['size']} is out of range; refusing the whole index")
    if not HEX64_RE.match(fields["sha256"]):
        raise UserError(f"{where}: {what} sha256 is not 64 hex digits; refusing the whole index")
    if why := path_problem(fields["path"]):
        raise UserError(f"{where}: {why}: refusing the whole index")


def _entry(raw: Any, where: str, form: int) -> Entry:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: malformed package entry (not an object)")
    fields = dict(raw)
    headers_raw = fields.pop("headers", None)
    try:
        entry = Entry(**fields)
        headers = Part(**headers_raw) if isinstance(headers_raw, dict) else None
    except TypeError as e:
        raise UserError(f"{where}: malformed package entry ({e})") from None
    for name in ("name", "variant", "arch", "kernel_release", "version"):
        if not isinstance(getattr(entry, name), str):
            raise UserError(f"{where}: package entry field {name!r} has the wrong type")
    if why := name_problem(entry.name, entry.variant, entry.arch, entry.kernel_release, entry.version):
        raise UserError(f"{where}: package entry {why}: refusing the whole index")
    _file(fields, where, "package entry")
    if form == OLD_FORMAT:
        if "headers" in raw:
            raise UserError(f"{where}: malformed package entry (a headers part in a format-{OLD_FORMAT} index)")
        return entry
    if headers is None:
        raise UserError(
            f"{where}: the entry for {entry.path} has only one part (every package is published as a kernel "
            "part and a headers part); refusing the whole index"
        )
    _file(asdict(headers), where, f"{entry.path}: headers part")
    wanted = f"{PACKAGES}/{headers_name(_base(entry.path))}"
    if entry.path.endswith(HEADERS_INFIX + SUFFIX) or headers.path != wanted:
        raise UserError(f"{where}: {entry.path}: its headers part is not {wanted}; refusing the whole index")
    return replace(entry, headers=headers)


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


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
    form = doc.get("format") if isinstance(doc, dict) else None
    if form not in (OLD_FORMAT, INDEX_FORMAT) or isinstance(form, bool):
        raise UserError(f"{where}: unknown index format; upgrade distkernel")
    serial, packages = doc.get("serial"), doc.get("packages")
    if not isinstance(serial, int) or isinstance(serial, bool) or not isinstance(packages, list):
        raise UserError(f"{where}: malformed index (serial, packages)")
    if not 1 <= serial < 2**63:  # repo init starts at 1; the serials file stores it as JSON
        raise UserError(f"{where}: serial {serial} is out of range; republish with `distkernel repo add`")
    index = Index(serial, tuple(_entry(p, where, int(form)) for p in packages))
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


def _addable(pkg: Path, repo_key: TrustedKey) -> VerifiedPackage:
    """A package's verdict when clients can take it: it matches its manifest, its
    names make a plain file name in packages/, and it is signed (by the repo's key, the
    signature checks; by another key, clients check it against the keys they trust)."""
    result = check_package(pkg)  # the one reader: refuses a damaged package in one line
    meta = result.metadata
    if why := name_problem(meta.name, meta.variant, meta.arch, meta.kernel_release, meta.version):
        raise UserError(f"{pkg}: its metadata's {why}; not adding it (rebuild it with a plain name)")
    if why := path_problem(f"{PACKAGES}/{meta.filename}"):
        raise UserError(f"{pkg}: its metadata gives the {why}; not adding it")
    if meta.filename.endswith(HEADERS_INFIX + SUFFIX):  # another package's headers part is named so
        raise UserError(f"{pkg}: its file name {meta.filename} ends like a headers part; use another variant name")
    if result.signature is None:
        raise UserError(
            f"{pkg}: not signed, and every client refuses unsigned packages; sign it first: "
            f"`distkernel sign {pkg} --key {repo_key.origin}`"
        )
    key, why = check_signature(result.manifest_bytes, result.signature, [repo_key])
    if key is None and "not trusted" not in why:
        raise UserError(f"{pkg}: {why}; not adding it (sign it again with `distkernel sign {pkg} --key KEY`)")
    return result


def _unchanged(repo: Path, old: Entry | None, verified: VerifiedPackage) -> bool:
    """OLD's two files are intact and hold this very package (the same manifest and
    signature: splitting it again would write the same bytes)."""
    if old is None or old.headers is None:
        return False
    for part in (old.kernel, old.headers):
        file = repo / part.path
        if not file.is_file() or file.stat().st_size != part.size or cache.sha256_file(file) != part.sha256:
            return False
    head = read_head(repo / old.path)
    return (head.manifest_sha256, head.signature) == (verified.manifest_sha256, verified.signature)


class _Staged:
    """Parts written under hidden names in packages/, renamed into place together (the
    headers parts first: a client never finds a kernel part whose headers part is not
    there yet), or all removed."""

    def __init__(self, repo: Path) -> None:
        self.folder = repo / PACKAGES
        self.moves: list[tuple[Path, Path]] = []

    def split(self, pkg: Path, verified: VerifiedPackage) -> Entry:
        meta = verified.metadata
        final_k, final_h = self.folder / meta.filename, self.folder / headers_name(meta.filename)
        n = len(self.moves)
        tmp_k, tmp_h = (self.folder / f".{f.name}.add-{os.getpid()}-{n}" for f in (final_k, final_h))
        self.moves += [(tmp_h, final_h), (tmp_k, final_k)]
        split_package(pkg, tmp_k, tmp_h, verified)
        parts = [Part(f"{PACKAGES}/{final.name}", tmp.stat().st_size, cache.sha256_file(tmp)) for tmp, final in
                 ((tmp_k, final_k), (tmp_h, final_h))]  # fmt: skip
        names = (meta.name, meta.variant, meta.arch, meta.kernel_release, meta.version)
        return Entry(*names, parts[0].path, parts[0].size, parts[0].sha256, parts[1])

    def commit(self) -> None:
        for tmp, final in sorted(self.moves, key=lambda m: not m[1].name.endswith(HEADERS_INFIX + SUFFIX)):
            os.replace(tmp, final)
        cache.fsync_dir(self.folder)

    def clean(self) -> None:
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)


def add_packages(repo: Path, packages: list[Path], key: Path | None = None) -> Index:
    """Publish packages (each checked first) as their two parts and a new index, serial
    + 1. A package with the same file name replaces the old entry; the whole packages of
    a format-1 index are split too."""
    key = _own_key(repo, key)
    index = read_own_index(repo, key)
    public = load_package_private(key).public_key()
    repo_key = TrustedKey(public_fingerprint(public), public, key)
    # All checked and split before any is renamed into place: a bad one changes nothing.
    checked = [(pkg, _addable(pkg, repo_key)) for pkg in packages]
    entries = {e.path: e for e in index.entries}
    staged = _Staged(repo)
    try:
        for old in [e for e in index.entries if e.headers is None]:  # a format-1 repo's whole packages
            whole = repo / old.path
            entries[old.path] = staged.split(whole, check_package(whole))
        for pkg, verified in checked:
            path = f"{PACKAGES}/{verified.metadata.filename}"
            if not _unchanged(repo, entries.get(path), verified):
                entries[path] = staged.split(pkg, verified)
        staged.commit()
    finally:
        staged.clean()
    new = replace(index, serial=index.serial + 1, entries=tuple(entries[p] for p in sorted(entries)))
    _write(repo, new, key)
    return new


def remove_packages(repo: Path, paths: list[str], key: Path | None = None) -> Index:
    """Publish a new index without the entries at PATHS (serial + 1), then delete their files."""
    key = _own_key(repo, key)
    index = read_own_index(repo, key)
    gone = set(paths)
    new = replace(index, serial=index.serial + 1, entries=tuple(e for e in index.entries if e.path not in gone))
    _write(repo, new, key)
    files = [*gone, *(e.headers.path for e in index.entries if e.path in gone and e.headers)]
    for path in files:  # after the index no longer names them
        if path_problem(path) is None:
            (repo / path).unlink(missing_ok=True)
    return new
