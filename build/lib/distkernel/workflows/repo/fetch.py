"""The client side of the binhost: fetch the signed index, refuse a replayed older one,
pick exactly the package asked for (name[@version], arch, variant) or stop, and
download it with its size, sha256, manifest and signature checked before it appears.
Never a fallback: no other variant, no other arch, no build."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.package.reader import check_package
from distkernel.build.trust.gate import TRUSTED_DIR, trusted_keys
from distkernel.build.trust.signing import TrustedKey, check_signature
from distkernel.core import cache
from distkernel.core.arch import get_arch, known_arches
from distkernel.core.download import deadline_for, download_bytes, download_file
from distkernel.core.errors import UserError
from distkernel.core.paths import DOWNLOADS, SERIALS
from distkernel.workflows.repo import serials
from distkernel.workflows.repo.index import INDEX, Entry, Index, read_index

MAX_INDEX = 16 << 20
ROOT_DOWNLOADS = DOWNLOADS  # like apt's /var/cache/apt/archives
FROM_HINT = "check --from and that the repo is served"


@dataclass(frozen=True)
class Client:
    """Who fetches: the keys it trusts, where it remembers serials, and how its user
    would change either (error texts name only options the command has)."""

    trusted: list[TrustedKey]
    serials: Path
    key_fix: str  # how to make the repo's key trusted
    arch_fix: str = ""  # how to ask for another arch, when the command can


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


def fetch_index(url: str, client: Client) -> tuple[Index, str, str]:
    """The checked index, its digest and its signer; nothing is remembered yet."""
    where = url + INDEX
    if not client.trusted:
        raise UserError(f"no trusted key to check {where}: {client.key_fix}")
    data = download_bytes(where, limit=MAX_INDEX, deadline=deadline_for(), hint=FROM_HINT)
    got = read_index(data, where, client.trusted, fix=client.key_fix)
    serials.check_file(client.serials, got.signer, got.index.serial, got.sha256, where)
    return got.index, got.sha256, got.signer


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


def _download(url: str, entry: Entry, part: Path) -> None:
    """Into `part`, reading at most one byte more than the index announces."""
    got = download_file(url, part, limit=entry.size, deadline=deadline_for(entry.size), hint=FROM_HINT)
    if got.size != entry.size:
        what = "truncated" if got.size < entry.size else "longer than announced"
        raise UserError(f"{url}: download {what} ({got.size} bytes, the index says {entry.size}); refusing it")
    if got.sha256 != entry.sha256:
        raise UserError(f"{url}: sha256 differs from the signed index (tampered with); refusing it")


def _check_package(url: str, entry: Entry, part: Path, trusted: list[TrustedKey]) -> None:
    result = check_package(part)  # the one reader: refuses a damaged package in one line
    key, why = check_signature(result.manifest.to_bytes(), result.signature, trusted)
    if key is None:
        raise UserError(f"{url}: {why}; refusing it")
    meta = result.metadata
    if (meta.name, meta.arch, meta.variant, meta.kernel_release) != (
        entry.name,
        entry.arch,
        entry.variant,
        entry.kernel_release,
    ):
        raise UserError(f"{url}: its metadata does not match the index entry; refusing it")


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir()
    return list(reversed(missing))


def fetch_package(name_spec: str, url: str, arch: str, variant: str, dest: Path, *, client: Client) -> Path:
    """Download the package matching NAME[@VERSION], arch and variant from the repo at
    URL into DEST, fully checked. When any check fails nothing is left behind: no
    folder, no partial file, no remembered serial."""
    url = repo_url(url)
    index, digest, signer = fetch_index(url, client)
    entry = choose(index, name_spec, arch, variant, url + INDEX)
    try:
        created = _make_dirs(dest)
    except OSError as e:
        raise UserError(f"{dest}: cannot create the download folder ({e.strerror})") from None
    final = dest / entry.path.rsplit("/", 1)[1]
    part = dest / f".{final.name}.part-{os.getpid()}"
    done = False
    try:
        _download(url + entry.path, entry, part)
        _check_package(url + entry.path, entry, part, client.trusted)
        serials.remember(client.serials, signer, index.serial, digest, url + INDEX)
        os.replace(part, final)
        cache.fsync_dir(dest)
        done = True
    except OSError as e:
        raise UserError(f"{dest}: cannot write the package there ({e.strerror})") from None
    finally:
        part.unlink(missing_ok=True)
        if not done:
            for folder in reversed(created):
                with contextlib.suppress(OSError):  # not empty: someone else wrote there meanwhile
                    folder.rmdir()
    return final


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


def fetch_for_root(spec: str, url: str, root: Path) -> Path:
    """`install NAME[+VARIANT][@VERSION] --from URL`: the host's arch, the keys ROOT
    trusts, the serials ROOT has seen; downloaded into ROOT's package cache."""
    name_spec, variant = split_spec(spec)
    trusted_dir = root / TRUSTED_DIR
    client = Client(
        trusted_keys(root),
        serials_file(root),
        key_fix=f"copy the repo's public key (package.pub) into {trusted_dir}/",
    )
    arch = host_arch(f"use `distkernel fetch {spec} --from URL --arch ARCH`, then install the file")
    return fetch_package(name_spec, url, arch, variant, root / ROOT_DOWNLOADS, client=client)
