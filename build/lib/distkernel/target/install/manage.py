"""The commands that change which kernels a root has without a package: remove,
rollback, mark-good, recover; and what runs after any commit (grub-mkconfig, hooks)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from distkernel.core import paths
from distkernel.core.errors import UserError
from distkernel.core.paths import STATE_DIR, under_root
from distkernel.core.tools import run
from distkernel.target.install.changes import check_root, stage_removal, stage_shared
from distkernel.target.install.layouts import spec
from distkernel.target.install.layouts.grub import has_mkconfig
from distkernel.target.install.plugins import run_hooks, run_hooks_before
from distkernel.target.install.state import KernelRecord, State, read_state
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import checkpoint, recover_journal, root_lock, transaction

GRUB_LOG = paths.GRUB_LOG


def load_state(root: Path) -> State:
    """The kernels distkernel installed in ROOT (an interrupted transaction is settled first)."""
    root = Path(root).resolve()
    if not (root / STATE_DIR).is_dir():
        return State()
    with root_lock(root):
        recover_journal(root)
        return read_state(root)


def recover(root: Path) -> tuple[str | None, list[str]]:
    """Settle an interrupted transaction; (what was done, remaining problems)."""
    root = Path(root).resolve()
    if not (root / STATE_DIR).is_dir():  # nothing of ours here: write nothing either
        return None, []
    with root_lock(root):
        done = recover_journal(root)
        return done, check_root(root, read_state(root))


def _newest_bootable(state: State, before: int | None = None) -> str | None:
    for k in state.ordered():
        if k.bootable and (before is None or k.seq < before):
            return k.release
    return None


def _commit_change(target: Target, what: str, old: State, new: State, removed: Sequence[KernelRecord] = ()) -> State:
    for k in removed:
        run_hooks_before(target, "remove", k.release, k.layout)
    with transaction(target.root, what) as tx:
        for k in removed:
            stage_removal(tx, k)
        new = stage_shared(tx, target, old, new)
        tx.commit(new)
    run_after_commit(target, new, added=[], removed=removed)
    return new


def _removal(target: Target, old: State, release: str, keep_last: bool) -> tuple[KernelRecord, State]:
    """The kernel to remove and the state after it: the next bootable kernel becomes the
    default when the default goes; with `keep_last` the last kernel of ours stays (the
    CLI asks for --force)."""
    root = target.root
    k = old.kernels.get(release)
    if k is None:
        foreign = target.path(target.modules_dir(release)).exists()
        why = "was not installed by distkernel; it is left alone" if foreign else "is not installed"
        raise UserError(f"{root}: kernel {release} {why} (see `distkernel list --root {root}`)")
    if target.is_host and release == os.uname().release:
        raise UserError(f"kernel {release} is the running kernel; boot another one first")
    kernels = {r: v for r, v in old.kernels.items() if r != release}
    if not kernels and keep_last:
        raise UserError(
            f"{root}: kernel {release} is the last kernel distkernel installed there; "
            "removing it leaves no kernel of ours to boot: pass --force to remove it anyway"
        )
    default = old.default if old.default != release else _newest_bootable(State(kernels))
    return k, State(kernels, default, old.shared, old.next_seq)


def plan_remove(root: Path, release: str, keep_last: bool = False) -> tuple[KernelRecord, State]:
    """What `remove` would do, changing nothing: (the kernel's record, the state after)."""
    root = Path(root).resolve()
    return _removal(Target.probe(root), load_state(root), release, keep_last)


def remove_kernel(root: Path, release: str, keep_last: bool = False) -> State:
    root = Path(root).resolve()
    target = Target.probe(root)
    with root_lock(root):
        checkpoint("locked")
        recover_journal(root)
        old = read_state(root)
        k, new = _removal(target, old, release, keep_last)
        return _commit_change(target, f"remove {release}", old, new, [k])


def rollback(root: Path) -> State:
    """Make the kernel installed before the default one the default."""
    root = Path(root).resolve()
    target = Target.probe(root)
    with root_lock(root):
        recover_journal(root)
        old = read_state(root)
        current = old.kernels.get(old.default or "")
        previous = _newest_bootable(old, before=current.seq if current else None)
        if current is None or previous is None:
            raise UserError(f"{root}: no earlier bootable kernel to roll back to (see `distkernel list --root {root}`)")
        return _commit_change(target, f"rollback to {previous}", old, dataclasses.replace(old, default=previous))


def mark_good(root: Path, release: str | None = None) -> State:
    """Mark RELEASE (default: the running kernel when ROOT is /, else the default) known-good."""
    root = Path(root).resolve()
    target = Target.probe(root)
    with root_lock(root):
        recover_journal(root)
        old = read_state(root)
        if release is None:
            running = os.uname().release
            release = running if target.is_host and running in old.kernels else old.default
        k = old.kernels.get(release or "")
        if k is None:
            raise UserError(f"{root}: no kernel {release or '(no default)'} installed by distkernel to mark good")
        kernels = {**old.kernels, k.release: dataclasses.replace(k, known_good=True)}
        return _commit_change(target, f"mark-good {k.release}", old, dataclasses.replace(old, kernels=kernels))


def run_after_commit(
    target: Target, state: State, *, added: Sequence[KernelRecord], removed: Sequence[KernelRecord]
) -> list[str]:
    """The root's hooks, then grub-mkconfig when the root has it and uses grub."""
    ran: list[str] = []
    for k in removed:
        ran += run_hooks(target, "remove", k.release, k.image, k.initrd, k.layout, k.initramfs)
    for k in added:
        ran += run_hooks(target, "add", k.release, k.image, k.initrd, k.layout, k.initramfs)
    if any(k.layout == "grub" for k in [*state.kernels.values(), *removed]):
        _grub_mkconfig(target)
    return ran


def _grub_mkconfig(target: Target) -> None:
    tool = has_mkconfig(target)
    if tool is None or not (target.is_host or (target.root / "bin/sh").exists()):
        return
    argv = ["/" + tool, "-o", "/" + target.fmt(spec("grub")["config"], "")]
    if not target.is_host:
        argv = ["chroot", str(target.root), *argv]
    log = under_root(target.root, GRUB_LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    run(argv, log=log, what=f"{target.root}: /{tool}")
