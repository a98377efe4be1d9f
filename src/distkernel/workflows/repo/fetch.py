"""The client side of the binhost: fetch the signed index, refuse a replayed older one,
pick exactly the package asked for (name[@version], arch, variant) or stop, and
download it with its size, sha256, manifest and signature checked before it appears.
Never a fallback: no other variant, no other arch, no build.

A package is published as two parts (parts.py): an install downloads the kernel part,
and the headers part only when the root builds external modules; `fetch` downloads
both and joins them into the package file as built.

A binhost may have mirrors, tried in order: one that cannot be reached, serves an
index older than one already seen, or serves bytes that do not match the signed index
is skipped with a one-line warning, never trusted. The index is asked for
conditionally (the validators remembered per root and mirror URL); a package download
that the connection cuts is resumed with a range request."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

from distkernel.build.package.format import HEADERS_PART, KERNEL_PART, WHOLE
from distkernel.build.package.reader import VerifiedPackage
from distkernel.build.trust.gate import TRUSTED_DIR, trusted_keys
from distkernel.build.trust.signing import TrustedKey
from distkernel.core import cache
from distkernel.core.arch import get_arch, known_arches
from distkernel.core.download import deadline_for, download_to, warn
from distkernel.core.errors import UserError
from distkernel.core.paths import CACHE_DIR, DOWNLOADS, SERIALS
from distkernel.target.extmod import registry
from distkernel.workflows.repo import serials, validators
from distkernel.workflows.repo.artifacts import FROM_HINT, MIRROR_PROBLEMS, Obtained, Wanted, obtain
from distkernel.workflows.repo.index import INDEX, Entry, Index, read_index
from distkernel.workflows.repo.parts import join_parts

MAX_INDEX = 16 << 20
ROOT_DOWNLOADS = DOWNLOADS  # like apt's /var/cache/apt/archives
ROOT_INDEXES = f"{CACHE_DIR}/indexes"  # the last index per mirror URL, with its ETag


@dataclass(frozen=True)
class Client:
    """Who fetches: the keys it trusts, where it remembers serials, and how its user
    would change either (error texts name only options the command has)."""

    trusted: list[TrustedKey]
    serials: Path
    key_fix: str  # how to make the repo's key trusted
    arch_fix: str = ""  # how to ask for another arch, when the command can
    indexes: Path | None = None  # where the last index per mirror is remembered


def repo_url(source: str) -> str:
    """A URL ending in '/': http(s)://, file://, or a local folder."""
    if "://" not in source:
        source = Path(source).resolve().as_uri()
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme not in ("http", "https", "file"):
        raise UserError(f"--from {source}: unsupported URL scheme {scheme!r}; use http://, https:// or a folder")
    return source if source.endswith("/") else source + "/"


def serials_file(root: Path | None) -> Path:
    """Where the last serial seen per binhost is remembered: in the root being
    installed into, else in the user's cache."""
    return root / SERIALS if root is not None else cache.cache_root() / "repos" / os.path.basename(SERIALS)


def indexes_dir(root: Path | None) -> Path:
    """Where the last index per mirror URL is remembered (beside the serials)."""
    return root / ROOT_INDEXES if root is not None else cache.cache_root() / "repos" / "indexes"


@dataclass(frozen=True)
class Fetched:
    index: Index
    sha256: str  # of the signed bytes
    signer: str
    data: bytes  # the file as served, remembered after a successful fetch
    etag: str
    last_modified: str


def fetch_index(url: str, client: Client) -> Fetched:
    """The checked index, conditionally requested; nothing is remembered yet."""
    where = url + INDEX
    if not client.trusted:
        raise UserError(f"no trusted key to check {where}: {client.key_fix}")
    known = validators.load(client.indexes, where)
    sink = io.BytesIO()
    headers = known.headers() if known else {}
    got = download_to(where, sink, limit=MAX_INDEX, deadline=deadline_for(), hint=FROM_HINT, headers=headers)
    data = known.data if known and got.status == 304 else sink.getvalue()
    checked = read_index(data, where, client.trusted, fix=client.key_fix)
    serials.check_file(client.serials, checked.signer, checked.index.serial, checked.sha256, where)
    etag, modified = got.etag, got.last_modified
    if known and got.status == 304:  # a 304 may repeat the validators or not
        etag, modified = etag or known.etag, modified or known.last_modified
    return Fetched(checked.index, checked.sha256, checked.signer, data, etag, modified)


def _version_key(release: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+_~]", release)]


def choose(index: Index, spec: str, arch: str, variant: str, where: str) -> Entry:
    """The one entry matching NAME[@VERSION] (kernel release or source version), arch
    and variant; the newest release when no version is given. Nothing else."""
    name, _, version = spec.partition("@")
    found = [
        e
        for e in index.entries
        if e.name == name
        and e.arch == arch
        and e.variant == variant
        and (not version or version in (e.kernel_release, e.version))
    ]
    if not found:
        others = sorted(
            f"{e.name}@{e.kernel_release} {e.arch}{'+' + e.variant if e.variant else ''}"
            for e in index.entries
            if e.name == name
        )
        wanted = f"{spec} for {arch}{' variant ' + variant if variant else ' (no variant)'}"
        raise UserError(
            f"{where}: no package {wanted}; not falling back to anything else",
            details=[f"available: {', '.join(others)}" if others else f"the repo has no package named {name}"],
        )
    return max(found, key=lambda e: _version_key(e.kernel_release))


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir()
    return list(reversed(missing))


@dataclass(frozen=True)
class Got:
    """What a client fetched for one index entry, fully checked."""

    package: Path  # the kernel part; the whole package from `fetch`, or for an old-style entry
    part: str  # kernel, or whole
    headers: Path | None  # the headers part, when asked for
    entry: Entry
    urls: tuple[str, ...]  # the mirrors, in order
    # The judgement of PACKAGE (its manifest is the headers part's too): an install of
    # it takes its parsed manifest instead of parsing the same bytes again.
    verified: VerifiedPackage

    @property
    def manifest_sha256(self) -> str:
        return self.verified.manifest_sha256


def fetch_package(
    name_spec: str,
    urls: list[str],
    arch: str,
    variant: str,
    dest: Path,
    *,
    client: Client,
    headers: bool = True,
    join: bool = True,
    at_hand: tuple[Path, ...] = (),
) -> Got:
    """Download the package matching NAME[@VERSION], arch and variant from the first
    of the mirrors URLS that serves it intact into DEST, fully checked: JOIN, the
    package file as built (from both parts); else its kernel part, and its headers part
    when HEADERS, under their own names (a file of the right sha256 already in DEST,
    or in AT_HAND, is not downloaded again). When any check fails nothing is left
    behind: no folder, no partial file, no remembered serial."""
    mirrors = [repo_url(u) for u in urls]  # every URL checked before any is tried
    if not mirrors:
        raise UserError(f"no binhost to fetch {name_spec} from; {FROM_HINT}")
    problems: list[str] = []
    for n, url in enumerate(mirrors):
        try:
            got = _fetch_from(url, name_spec, arch, variant, dest, client, headers or join, join, at_hand)
            return replace(got, urls=tuple(mirrors))
        except MIRROR_PROBLEMS as e:
            if len(mirrors) == 1:
                raise
            problems.append(e.message)
            if n + 1 < len(mirrors):
                warn(f"skipping mirror {url}: {e.message}; trying {mirrors[n + 1]}")
    raise UserError(f"none of the {len(mirrors)} mirrors served {name_spec}; {FROM_HINT}", details=problems)


def _wanted(entry: Entry, headers: bool) -> list[Wanted]:
    names = (entry.name, entry.arch, entry.variant, entry.kernel_release)
    if entry.headers is None:  # an old-style (format 1) entry: the whole package
        return [Wanted(entry.kernel, WHOLE, names)]
    return [Wanted(entry.kernel, KERNEL_PART, names)] + (
        [Wanted(entry.headers, HEADERS_PART, names)] if headers else []
    )


def _fetch_from(
    url: str,
    name_spec: str,
    arch: str,
    variant: str,
    dest: Path,
    client: Client,
    headers: bool,
    join: bool,
    at_hand: tuple[Path, ...],
) -> Got:
    index = fetch_index(url, client)
    entry = choose(index.index, name_spec, arch, variant, url + INDEX)
    try:
        created = _make_dirs(dest)
    except OSError as e:
        raise UserError(f"{dest}: cannot create the download folder ({e.strerror})") from None
    got: list[Obtained] = []
    joined = dest / f".{entry.kernel.path.rsplit('/', 1)[1]}.join-{os.getpid()}"
    done = False
    try:
        for wanted in _wanted(entry, headers):
            same_as = got[0].verified if got else None
            got.append(obtain(url, replace(wanted, same_as=same_as), dest, (dest, *at_hand), client.trusted))
        serials.remember(client.serials, index.signer, index.index.serial, index.sha256, url + INDEX)
        validators.save(client.indexes, url + INDEX, index.data, index.etag, index.last_modified)
        finals = [dest / w.name for w in _wanted(entry, headers)]
        if join and len(got) == 2:
            whole = join_parts(got[0].path, got[1].path, joined, got[0].verified)  # both judged by obtain
            os.replace(joined, finals[0])
            result = Got(finals[0], WHOLE, None, entry, (url,), replace(whole, path=finals[0]))
        else:
            for obtained, final in zip(got, finals, strict=True):
                if obtained.fresh:
                    os.replace(obtained.path, final)
            kernel = replace(got[0].verified, path=finals[0])
            result = Got(finals[0], kernel.part, finals[1] if len(finals) > 1 else None, entry, (url,), kernel)
        cache.fsync_dir(dest)
        done = True
    except OSError as e:
        raise UserError(f"{dest}: cannot write the package there ({e.strerror})") from None
    finally:
        joined.unlink(missing_ok=True)
        for obtained in got:
            if obtained.fresh:
                obtained.path.unlink(missing_ok=True)
        if not done:
            for folder in reversed(created):
                with contextlib.suppress(OSError):  # not empty: someone else wrote there meanwhile
                    folder.rmdir()
    return result


def host_arch(fix: str) -> str:
    for name in known_arches():
        if get_arch(name).native:
            return name
    raise UserError(f"this machine ({platform.machine()}) is none of {', '.join(known_arches())}; {fix}")


def split_spec(spec: str) -> tuple[str, str]:
    """NAME[+VARIANT][@VERSION] -> (NAME[@VERSION], VARIANT): '+' never occurs in names."""
    name, _, version = spec.partition("@")
    name, _, variant = name.partition("+")
    return (f"{name}@{version}" if version else name), variant


def fetch_for_root(spec: str, urls: list[str], root: Path, *, with_headers: bool = False) -> Got:
    """`install NAME[+VARIANT][@VERSION] --from URL...`: the host's arch, the keys ROOT
    trusts, the serials and indexes ROOT has seen; downloaded into ROOT's package cache.
    The headers part only WITH_HEADERS, or when ROOT has external modules to build."""
    name_spec, variant = split_spec(spec)
    trusted_dir = root / TRUSTED_DIR
    client = Client(
        trusted_keys(root),
        serials_file(root),
        key_fix=f"copy the repo's public key (package.pub) into {trusted_dir}/",
        indexes=indexes_dir(root),
    )
    arch = host_arch(f"use `distkernel fetch {spec} --from URL --arch ARCH`, then install the file")
    headers = with_headers or registry.needs_headers(root)
    dest = root / ROOT_DOWNLOADS
    return fetch_package(name_spec, urls, arch, variant, dest, client=client, headers=headers, join=False)
