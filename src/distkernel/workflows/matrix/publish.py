"""Publishing a matrix's passing packages to its binhost (signed with the matrix's key)
and pruning: keep the newest N per name/arch/variant, never the newest passing one."""

from __future__ import annotations

import shutil
from pathlib import Path

from distkernel.workflows.repo.index import INDEX, Entry, add_packages, init_repo, read_own_index, remove_packages
from distkernel.workflows.repo.sign import sign_package


def _release_key(release: str) -> tuple[tuple[int, int | str], ...]:
    import re

    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in re.findall(r"\d+|[A-Za-z]+", release))


def publish(binhost: Path, key: Path, packages: list[Path], stage: Path) -> list[str]:
    """Signed copies of PACKAGES added to BINHOST (made when missing); their index paths."""
    if not (binhost / INDEX).exists():
        init_repo(binhost, key)
    if not packages:
        return []
    stage.mkdir(parents=True, exist_ok=True)
    copies = []
    for pkg in packages:
        copy = stage / pkg.name
        shutil.copyfile(pkg, copy)
        sign_package(copy, key)
        copies.append(copy)
    before = {e.path for e in read_own_index(binhost, key).entries}
    index = add_packages(binhost, copies, key)
    names = {c.name for c in copies}
    return sorted(e.path for e in index.entries if e.path.rsplit("/", 1)[-1] in names or e.path not in before)


def prune_plan(entries: tuple[Entry, ...], keep: int, protected: set[str]) -> list[str]:
    """Index paths to remove: beyond the newest KEEP per name/arch/variant; a PROTECTED
    path (the newest passing package of its line) is never removed."""
    groups: dict[tuple[str, str, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.name, e.arch, e.variant), []).append(e)
    gone = []
    for group in groups.values():
        group.sort(key=lambda e: _release_key(e.kernel_release), reverse=True)
        gone += [e.path for e in group[keep:] if e.path not in protected]
    return sorted(gone)


def prune(binhost: Path, key: Path, keep: int, protected: set[str]) -> list[str]:
    index = read_own_index(binhost, key)
    gone = prune_plan(index.entries, keep, protected)
    if gone:
        remove_packages(binhost, gone, key)
    return gone
