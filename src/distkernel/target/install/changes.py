"""Pieces every transaction on a root shares: staging the shared files (links,
grub.cfg, loader.conf) for a new state, removing a kernel's files, and the checks
that an install, a remove or a rollback left the root consistent."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Collection
from pathlib import Path

from distkernel.core.cache import sha256_bytes, sha256_file
from distkernel.target.install.layouts import shared_files, stage_bytes, stage_link
from distkernel.target.install.state import KernelRecord, PlacedFile, State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import JOURNAL, Transaction


def stage_removal(tx: Transaction, record: KernelRecord, keep: Collection[str] = ()) -> None:
    """Delete a kernel's files and folders, except the paths in `keep` (a reinstall's)."""
    for f in record.files:
        if f.path not in keep:
            tx.delete(f.path)
    for d in record.dirs:
        if d not in keep:
            tx.delete(d)


def _on_disk(root: Path, f: PlacedFile) -> bool:
    p = root / f.path
    with contextlib.suppress(OSError):
        if f.link:
            return os.readlink(p) == f.link
        return not p.is_symlink() and p.is_file() and sha256_file(p) == f.sha256
    return False


def stage_shared(tx: Transaction, target: Target, old: State, new: State) -> State:
    """Stage the shared files `new` wants; delete ours it no longer wants."""
    placed: list[PlacedFile] = []
    wanted = shared_files(target, new)
    for path, want in sorted(wanted.items()):
        if want.link is not None:
            f = PlacedFile(path, link=want.link)
            if not _on_disk(tx.root, f):
                stage_link(tx, want.link, path)
        else:
            assert want.data is not None
            current = tx.root / path
            if current.is_file() and not current.is_symlink() and current.read_bytes() == want.data:
                f = PlacedFile(path, sha256=sha256_bytes(want.data))
            else:
                f = stage_bytes(tx, want.data, path)
        if want.owned:
            placed.append(f)
    for f in old.shared:
        if f.path not in wanted:
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
            if not _on_disk(root, f):
                problems.append(f"{k.release}: {f.path} is missing or differs from what was installed")
        for d in k.dirs:
            if not (root / d).is_dir():
                problems.append(f"{k.release}: folder {d} is missing")
        if not (root / k.modules_dir / "modules.dep").is_file():
            problems.append(f"{k.release}: {k.modules_dir}/modules.dep is missing (depmod did not run)")
    for f in state.shared:
        if not _on_disk(root, f):
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
