"""A kernel.org-style feed: `releases.json` lists the newest release of each series
(version, tarball URL, signature URL); every tarball folder has a clearsigned
`sha256sums.asc`; every tarball a detached signature (`.tar.sign`, over the
uncompressed tar). Nothing from the feed is trusted until gpgv accepts its signature."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.feeds.openpgp import clearsigned_text, verify_detached
from distkernel.core.download import deadline_for, download_bytes, download_file
from distkernel.core.errors import UserError

MAX_FEED = 4 << 20  # releases.json and sha256sums.asc are kilobytes
MAX_SIGNATURE = 64 << 10
SUMS = "sha256sums.asc"
TAR_SUFFIX = re.compile(r"\.tar(\.[a-z0-9]+)?$")


@dataclass(frozen=True)
class Release:
    version: str
    source: str  # the tarball's URL
    pgp: str  # its detached signature's URL


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("-")[0]))


def series_of(version: str) -> str:
    """6.1.192 -> 6.1 (a release's series: its first two numbers)."""
    return ".".join(str(x) for x in version_key(version)[:2])


def in_series(version: str, series: str) -> bool:
    return version == series or version.startswith(series + ".")


def signature_url(tarball_url: str) -> str:
    return TAR_SUFFIX.sub(".tar.sign", tarball_url)


def releases(feed: str, where: str) -> list[Release]:
    raw = download_bytes(feed, limit=MAX_FEED, deadline=deadline_for(MAX_FEED), hint="fix kernel.feed", where=where)
    try:
        doc = json.loads(raw)
        out = []
        for r in doc["releases"]:
            version, source = r["version"], r["source"]
            if isinstance(version, str) and isinstance(source, str) and source:
                pgp = r.get("pgp")
                out.append(Release(version, source, pgp if isinstance(pgp, str) and pgp else signature_url(source)))
        return out
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{where}{feed}: not a releases.json (a `releases` list of version/source); fix kernel.feed"
        ) from None


def newest(feed: str, series: str, where: str) -> Release | None:
    found = [r for r in releases(feed, where) if in_series(r.version, series)]
    return max(found, key=lambda r: version_key(r.version)) if found else None


def signed_sums(tarball_url: str, keyring: Path, where: str) -> dict[str, str]:
    """The sha256 of each file of the tarball's folder, from its signed sha256sums.asc."""
    url = tarball_url.rsplit("/", 1)[0] + "/" + SUMS
    signed = download_bytes(url, limit=MAX_FEED, deadline=deadline_for(MAX_FEED), hint="fix the URL", where=where)
    text = clearsigned_text(signed, keyring, f"{where}{url}")
    sums = {}
    for line in text.splitlines():
        if m := re.fullmatch(r"([0-9a-f]{64})\s+\*?(\S+)", line.strip()):
            sums[m.group(2)] = m.group(1)
    return sums


def signed_sha256(tarball_url: str, keyring: Path, where: str) -> str:
    name = tarball_url.rsplit("/", 1)[1]
    sums = signed_sums(tarball_url, keyring, where)
    if name not in sums:
        raise UserError(f"{where}{tarball_url}: {name} is not in the folder's signed {SUMS}; the feed is incomplete")
    return sums[name]


def verify_tarball(tarball_url: str, tarball: Path, sha256: str, keyring: Path, where: str) -> None:
    """TARBALL (whose sha256 is SHA256) is the one the signed sha256sums.asc names, and
    its detached signature verifies: else the source is refused (exit 2)."""
    signed = signed_sha256(tarball_url, keyring, where)
    if signed != sha256:
        raise UserError(
            f"{where}{tarball_url}: its sha256 {sha256} is not the signed {SUMS}'s {signed}; "
            f"the tarball was tampered with or the recipe's sha256 is wrong"
        )
    sig_url = signature_url(tarball_url)
    with tempfile.TemporaryDirectory(prefix="distkernel-sig-") as tmp:
        sig = Path(tmp) / "tarball.sign"
        download_file(
            sig_url,
            sig,
            limit=MAX_SIGNATURE,
            deadline=deadline_for(MAX_SIGNATURE),
            hint="publish the signature",
            where=where,
        )
        verify_detached(tarball, tarball_url.rsplit("/", 1)[1], sig, keyring, f"{where}{sig_url}")
