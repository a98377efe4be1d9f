"""One file of an index entry, fetched from one mirror and fully checked: a file already
at hand (of the size and sha256 the signed index gives, in a folder the caller names:
the root's package cache) or downloaded (resumed when the connection is cut), its bytes
checked against the index, then judged by the one reader as the part it is, its
manifest signed by a trusted key, its metadata the index entry's. A headers part must
carry the very manifest and signature of its kernel part."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.package.reader import VerifiedPackage, check_package
from distkernel.build.trust.signing import TrustedKey, check_signature
from distkernel.core import cache
from distkernel.core.download import DownloadError, deadline_for, download_resumable
from distkernel.core.errors import UserError
from distkernel.workflows.repo import serials
from distkernel.workflows.repo.index import Part

FROM_HINT = "check --from and that the repo is served"


class BadMirror(UserError):
    """A mirror served bytes that do not match the signed index: another may not."""


MIRROR_PROBLEMS = (DownloadError, serials.Replayed, BadMirror)


@dataclass(frozen=True)
class Wanted:
    """One file to fetch, and what it must be."""

    ref: Part  # where, how large, which sha256 (from the signed index, or what a root recorded from it)
    part: str  # what the reader holds it to: whole, kernel or headers (build/package/format.PART_TOPS)
    names: tuple[str, str, str, str] | None = None  # the entry's name, arch, variant, kernel release
    same_as: VerifiedPackage | None = None  # another part of the package: the same manifest and signature

    @property
    def name(self) -> str:
        return self.ref.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Obtained:
    path: Path
    fresh: bool  # downloaded under a temporary name: the caller renames or removes it
    verified: VerifiedPackage


def _at_hand(ref: Part, name: str, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        path = folder / name
        same_size = path.is_file() and not path.is_symlink() and path.stat().st_size == ref.size
        if same_size and cache.sha256_file(path) == ref.sha256:
            return path
    return None


def _download(url: str, ref: Part, part: Path) -> None:
    """Into `part`, reading at most one byte more than the index announces, resuming
    a cut transfer; the whole file's size and sha256 checked against the index."""
    got = download_resumable(url, part, size=ref.size, deadline=deadline_for(ref.size), hint=FROM_HINT)
    if got.size != ref.size:
        what = "truncated" if got.size < ref.size else "longer than announced"
        raise BadMirror(f"{url}: download {what} ({got.size} bytes, the index says {ref.size}); refusing it")
    if got.sha256 != ref.sha256:
        raise BadMirror(f"{url}: sha256 differs from the signed index (tampered with); refusing it")


def _check(url: str, path: Path, wanted: Wanted, trusted: list[TrustedKey]) -> VerifiedPackage:
    result = check_package(path, part=wanted.part)  # the one reader: refuses a damaged package in one line
    key, why = check_signature(result.manifest_bytes, result.signature, trusted)
    if key is None:
        raise UserError(f"{url}: {why}; refusing it")
    meta = result.metadata
    if wanted.names is not None and (meta.name, meta.arch, meta.variant, meta.kernel_release) != wanted.names:
        raise UserError(f"{url}: its metadata does not match the index entry; refusing it")
    other = wanted.same_as
    if other is not None and (result.manifest_sha256, result.signature) != (other.manifest_sha256, other.signature):
        raise UserError(f"{url}: its manifest is not the one of {other.path.name}; refusing it")
    return result


def obtain(url: str, wanted: Wanted, stage: Path, at_hand: Sequence[Path], trusted: list[TrustedKey]) -> Obtained:
    """WANTED from the mirror at URL (or at hand), checked; a fresh download lies in STAGE
    under a hidden name. Nothing is left behind when a check fails."""
    found = _at_hand(wanted.ref, wanted.name, at_hand)
    path = found or stage / f".{wanted.name}.part-{os.getpid()}"
    try:
        if found is None:
            _download(url + wanted.ref.path, wanted.ref, path)
        verified = _check(url + wanted.ref.path, path, wanted, trusted)
    except BaseException:
        if found is None:
            path.unlink(missing_ok=True)
        raise
    return Obtained(path, found is None, verified)
