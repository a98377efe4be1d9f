"""The client side of the binhost: fetch the signed index, refuse a replayed older one,
pick exactly the package asked for (name[@version], arch, variant) or stop, and
download it with its size, sha256, manifest and signature checked before it appears.
Never a fallback: no other variant, no other arch, no build."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from distkernel.build.package.reader import check_package
from distkernel.build.trust.gate import TRUSTED_DIR, trusted_keys
from distkernel.build.trust.signing import TrustedKey, check_signature
from distkernel.core import cache
from distkernel.core.arch import get_arch, known_arches
from distkernel.core.errors import UserError
from distkernel.workflows.repo.index import INDEX, Entry, Index, parse_index

MAX_INDEX = 16 << 20
CHUNK = 1 << 20
TIMEOUT = 60
SERIALS = "repo-serials.json"
ROOT_STATE = "var/lib/distkernel"
ROOT_DOWNLOADS = "var/cache/distkernel/packages"  # like apt's /var/cache/apt/archives


def repo_url(source: str) -> str:
    """A URL ending in '/': http(s)://, file://, or a local folder."""
    if "://" not in source:
        source = Path(source).resolve().as_uri()
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme not in ("http", "https", "file"):
        raise UserError(f"--from {source}: unsupported URL scheme {scheme!r}; use http://, https:// or a folder")
    return source if source.endswith("/") else source + "/"


def _open(url: str) -> urllib.response.addinfourl:
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        raise UserError(f"{url}: HTTP {e.code} {e.reason}; check --from") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"{url}: cannot fetch ({reason}); check --from and that the repo is served") from None


def serials_file(root: Path | None) -> Path:
    """Where the last serial seen per repo URL is remembered: in the root being
    installed into, else in the user's cache."""
    return root / ROOT_STATE / SERIALS if root is not None else cache.cache_dir("repos") / SERIALS


def _check_serial(url: str, index: Index, digest: str, memory: Path) -> None:
    """Refuse an index older than one already seen (a replay), or a different index
    with the same serial; remember this one."""
    with cache.locked("repo-serials"):
        try:
            seen = json.loads(memory.read_text())
        except (OSError, ValueError):
            seen = {}
        last = seen.get(url)
        if last is not None:
            if index.serial < last["serial"]:
                raise UserError(
                    f"{url}{INDEX}: serial {index.serial} is older than serial {last['serial']} seen before: "
                    "an old index is being replayed; refusing it"
                )
            if index.serial == last["serial"] and digest != last["sha256"]:
                raise UserError(f"{url}{INDEX}: serial {index.serial} was seen before with other content; refusing it")
        seen[url] = {"serial": index.serial, "sha256": digest}
        cache.atomic_write_text(memory, json.dumps(seen, indent=1, sort_keys=True) + "\n")


def fetch_index(url: str, trusted: list[TrustedKey], memory: Path) -> Index:
    if not trusted:
        raise UserError(
            f"no trusted key to check {url}{INDEX}: pass --key PUB, or add the repo's key to ROOT/{TRUSTED_DIR}/"
        )
    with _open(url + INDEX) as response:
        data = response.read(MAX_INDEX + 1)
    if len(data) > MAX_INDEX:
        raise UserError(f"{url}{INDEX}: larger than {MAX_INDEX} bytes; refusing it")
    index, digest = parse_index(data, url + INDEX, trusted)
    _check_serial(url, index, digest, memory)
    return index


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
    """Stream to `part`, reading at most one byte more than the index announces."""
    h = hashlib.sha256()
    got = 0
    with _open(url) as response, open(part, "wb") as f:
        while got <= entry.size and (chunk := response.read(min(CHUNK, entry.size + 1 - got))):
            got += len(chunk)
            h.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    if got != entry.size:
        what = "truncated" if got < entry.size else "longer than announced"
        raise UserError(f"{url}: download {what} ({got} bytes, the index says {entry.size}); refusing it")
    if h.hexdigest() != entry.sha256:
        raise UserError(f"{url}: sha256 differs from the signed index (tampered with); refusing it")


def resolve_package(
    name_spec: str,
    url: str,
    arch: str,
    variant: str,
    dest: Path,
    *,
    trusted: list[TrustedKey],
    root: Path | None = None,
) -> Path:
    """Download the package matching NAME[@VERSION], arch and variant from the repo at
    URL into DEST, fully checked; nothing appears in DEST unless every check passed."""
    url = repo_url(url)
    index = fetch_index(url, trusted, serials_file(root))
    entry = choose(index, name_spec, arch, variant, url + INDEX)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / entry.path.rsplit("/", 1)[1]
    part = dest / f".{final.name}.part-{os.getpid()}"
    try:
        _download(url + entry.path, entry, part)
        result = check_package(part)
        if not result.ok or result.manifest is None:
            raise UserError(
                f"{url}{entry.path}: does not match its manifest (tampered with); refusing it",
                details=result.problems[:20],
            )
        key, why = check_signature(result.manifest.to_bytes(), result.signature, trusted)
        if key is None:
            raise UserError(f"{url}{entry.path}: {why}; refusing it")
        meta = result.metadata
        if meta is None or (meta.name, meta.arch, meta.variant, meta.kernel_release) != (
            entry.name,
            entry.arch,
            entry.variant,
            entry.kernel_release,
        ):
            raise UserError(f"{url}{entry.path}: its metadata does not match the index entry; refusing it")
        os.replace(part, final)
        cache.fsync_dir(dest)
    finally:
        part.unlink(missing_ok=True)
    return final


def host_arch() -> str:
    for name in known_arches():
        if get_arch(name).native:
            return name
    raise UserError(f"this machine ({platform.machine()}) is none of {', '.join(known_arches())}; pass --arch")


def split_spec(spec: str) -> tuple[str, str]:
    """NAME[+VARIANT][@VERSION] -> (NAME[@VERSION], VARIANT): '+' never occurs in names."""
    name, _, version = spec.partition("@")
    name, _, variant = name.partition("+")
    return (f"{name}@{version}" if version else name), variant


def fetch_for_root(spec: str, url: str, root: Path) -> Path:
    """`install NAME[+VARIANT][@VERSION] --from URL`: the host's arch, the keys ROOT
    trusts, the serials ROOT has seen; downloaded into ROOT's package cache."""
    name_spec, variant = split_spec(spec)
    return resolve_package(
        name_spec, url, host_arch(), variant, root / ROOT_DOWNLOADS, trusted=trusted_keys(root), root=root
    )
