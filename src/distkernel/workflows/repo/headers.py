"""Headers on demand: a kernel installed without its headers gets them when external
modules are to be built for it (`modules add`, `modules rebuild`). From a binhost's
kernel part: its headers part, from the mirrors the root recorded at install time, in
their order; the file must have the size and sha256 the signed index gave then. From a
package file: the same file, while it is there. Either must carry the manifest the
installed kernel came with, signed by a key the root trusts."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from distkernel.build.package.format import HEADERS_PART
from distkernel.build.trust.gate import trusted_keys
from distkernel.core.download import warn
from distkernel.core.errors import UserError
from distkernel.core.paths import DOWNLOADS
from distkernel.target.install import KernelRecord, add_headers, load_state
from distkernel.workflows.repo.artifacts import MIRROR_PROBLEMS, Wanted, obtain
from distkernel.workflows.repo.index import Part, path_problem


def _local(root: Path, k: KernelRecord, package: Path) -> Path:
    if not package.is_file():
        raise UserError(
            f"{root}: kernel {k.release} was installed from {package} without its headers, and that file "
            f"is gone; install the package again with `distkernel install PKG --with-headers --root {root}`"
        )
    return package


def _fetch(root: Path, k: KernelRecord) -> Path:
    origin = k.origin
    reinstall = f"install it again with `distkernel install NAME --from URL --with-headers --root {root}`"
    if origin is not None and origin.package:
        return _local(root, k, Path(origin.package))
    if origin is None or path_problem(origin.headers_path) is not None or not origin.urls:
        raise UserError(f"{root}: kernel {k.release} has no headers, and no binhost to fetch them from; {reinstall}")
    wanted = Wanted(Part(origin.headers_path, origin.headers_size, origin.headers_sha256), HEADERS_PART)
    dest = root / DOWNLOADS
    dest.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for n, url in enumerate(origin.urls):
        try:
            got = obtain(url, wanted, dest, (dest,), trusted_keys(root))
        except MIRROR_PROBLEMS as e:
            problems.append(e.message)
            if n + 1 < len(origin.urls):
                warn(f"skipping mirror {url}: {e.message}; trying {origin.urls[n + 1]}")
            continue
        final = dest / wanted.name
        if got.fresh:
            os.replace(got.path, final)
        return final
    raise UserError(
        f"the headers of kernel {k.release} (installed without them) could not be fetched from its binhost; "
        f"check that it is served, or {reinstall}",
        details=problems,
    )


def fetch_missing_headers(root: Path, releases: Iterable[str] | None = None) -> tuple[tuple[str, str], ...]:
    """Fetch and place the headers of every kernel in ROOT (or of RELEASES) that was
    installed without them; (release, where they came from) for each that got them."""
    state = load_state(root)
    wanted = set(releases) if releases is not None else set(state.kernels)
    done = []
    for k in state.ordered():
        if k.release in wanted and not k.headers:
            local = k.origin.package if k.origin else ""
            add_headers(root, k.release, _fetch(root, k), whole=bool(local))
            done.append((k.release, local or "its binhost"))
    return tuple(done)
