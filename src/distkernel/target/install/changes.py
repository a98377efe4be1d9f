"""Pieces every transaction on a root shares: staging the shared files (links,
grub.cfg, loader.conf) for a new state, removing a kernel's files, and the checks
that an install, a remove or a rollback left the root consistent."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

from distkernel.core.cache import sha256_bytes
from distkernel.target.install import markgood
from distkernel.target.install.layouts import get, shared_files
from distkernel.target.install.layouts.base import stage_bytes, stage_link
from distkernel.target.install.state import KernelRecord, PlacedFile, State, on_disk
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import JOURNAL, Transaction


def stage_removal(tx: Transaction, record: KernelRecord, keep: Collection[str] = ()) -> None:
    """Delete a kernel's files and folders (its layout's `remove`), except the paths in
    `keep` (a reinstall's)."""
    get(record.layout).remove(tx, record, keep)


def stage_shared(tx: Transaction, target: Target, old: State, new: State) -> State:
    """Stage the shared files `new` wants; delete ours it no longer wants (when they
    still hold what we placed: a file changed since is someone else's now)."""
    placed: list[PlacedFile] = []
    wanted = {**shared_files(target, new), **markgood.shared(target, new)}
    for path, want in sorted(wanted.items()):
        if want.link is not None:
            f = PlacedFile(path, link=want.link)
            if not on_disk(tx.root, f):
                stage_link(tx, want.link, path)
        else:
            assert want.data is not None
            current = tx.root / path
            same = current.is_file() and not current.is_symlink() and current.read_bytes() == want.data
            if same and want.mode in (None, current.stat().st_mode & 0o777):
                f = PlacedFile(path, sha256=sha256_bytes(want.data))
            else:
                f = stage_bytes(tx, want.data, path, edit=not want.owned, mode=want.mode)
        if want.owned:
            placed.append(f)
    for f in old.shared:
        if f.path not in wanted and on_disk(tx.root, f):
            tx.delete(f.path)
    return dataclasses.replace(new, shared=tuple(placed))


def check_root(root: Path, state: State) -> list[str]:
    """What is inconsistent: files of a kernel or shared files missing or changed, a
    default that is not a complete kernel, an unfinished transaction."""
    problems: list[str] = []
    if (root / JOURNAL).exists():
        problems.append(f"{JOURNAL}: an unfinished transaction (run `distkernel recover`)")
    for k in state.ordered():
        for f in k.files:
            if not on_disk(root, f):
                problems.append(f"{k.release}: {f.path} is missing or differs from what was installed")
        for d in k.dirs:
            if not (root / d).is_dir():
                problems.append(f"{k.release}: folder {d} is missing")
        if not (root / k.modules_dir / "modules.dep").is_file():
            problems.append(f"{k.release}: {k.modules_dir}/modules.dep is missing (depmod did not run)")
    for f in state.shared:
        if not on_disk(root, f):
            problems.append(f"{f.path} is missing or differs from what was written")
        elif f.link and not (root / f.path).exists():
            problems.append(f"{f.path} points to nothing ({f.link})")
    if state.default is not None:
        chosen = state.kernels.get(state.default)
        if chosen is None:
            problems.append(f"the default {state.default} is not installed")
        elif not chosen.bootable:
            problems.append(f"the default {state.default} is not bootable (a required module failed)")
    elif state.kernels and any(k.bootable for k in state.kernels.values()):
        problems.append("no default kernel although bootable ones are installed")
    return problems
