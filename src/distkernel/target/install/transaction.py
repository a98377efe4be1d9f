"""Transactions on a root: a lock so two runs never interleave, files staged next to
their final place (same filesystem), synced, then a journal that lists the renames and
deletions; the journal makes the next run (or `recover`) finish a commit that was
interrupted, or throw away the staging of one that never reached it.

Journal phases: "staging" (abort on recovery: delete what was staged) and "commit"
(roll forward: every operation is idempotent, the new state.json is the last one)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distkernel.core.cache import atomic_write_text, flocked, fsync_dir
from distkernel.core.errors import UserError
from distkernel.target.install.state import STATE_DIR, STATE_FILE, State

JOURNAL = f"{STATE_DIR}/journal.json"
LOCK = f"{STATE_DIR}/lock"
KILL_ENV = "DISTKERNEL_TEST_KILL_AT"  # test-only: "step" or "step#N" (the N-th time)
_hits: dict[str, int] = {}


def checkpoint(step: str) -> None:
    """A step boundary. Under DISTKERNEL_TEST_KILL_AT the process dies here, as on a
    power cut: no cleanup, no flush (tests then check that recovery is consistent)."""
    want = os.environ.get(KILL_ENV)
    if not want:
        return
    _hits[step] = _hits.get(step, 0) + 1
    name, _, nth = want.partition("#")
    if name == step and (not nth or int(nth) == _hits[step]):
        os.kill(os.getpid(), signal.SIGKILL)


def root_lock(root: Path) -> contextlib.AbstractContextManager[None]:
    return flocked(root / LOCK)


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path: Path) -> None:
    """Flush one filesystem (thousands of staged files: one call, not one fsync each)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed", str(path))
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


class Transaction:
    def __init__(self, root: Path, what: str):
        self.root = root
        self.what = what
        self.txid = f"{int(time.time())}-{os.getpid()}"
        self.prefix = f".distkernel-{self.txid}-"
        self.dirs: list[str] = []  # where staged entries live
        self.made: list[str] = []  # folders this transaction created (removed on abort when empty)
        self.ops: list[dict[str, str]] = []
        self.committing = False  # past the commit journal: only recovery may finish it
        self._journal("staging")

    def _journal(self, phase: str) -> None:
        """Replace the journal atomically. Only the commit journal is fsynced: a staging
        journal lost in a power cut leaves hidden staged names, never an inconsistent
        root, and an fsync per staging folder costs seconds on a busy disk."""
        doc: dict[str, Any] = {"txid": self.txid, "what": self.what, "phase": phase, "prefix": self.prefix}
        doc.update(dirs=self.dirs, made=self.made, ops=self.ops)
        text = json.dumps(doc, indent=1) + "\n"
        path = self.root / JOURNAL
        if phase == "commit":
            atomic_write_text(path, text)
            return
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)

    def mkdirs(self, rel_dir: str) -> Path:
        """Create a folder (and its parents), remembering the ones that were new."""
        path = self.root / rel_dir
        missing: list[str] = []
        p = path
        while not p.exists() and p != self.root:
            missing.append(str(p.relative_to(self.root)))
            p = p.parent
        if missing:
            self.made.extend(reversed(missing))
            self._journal("staging")
            path.mkdir(parents=True, exist_ok=True)
        return path

    def stage(self, final: str) -> Path:
        """A staging name next to `final` (root-relative) for the caller to write."""
        parent = os.path.dirname(final)
        self.mkdirs(parent)
        if parent not in self.dirs:
            self.dirs.append(parent)
            self._journal("staging")
        return self.root / parent / f"{self.prefix}{os.path.basename(final)}"

    def put(self, staged: Path, final: str) -> None:
        self.ops.append({"op": "put", "staged": str(staged.relative_to(self.root)), "final": final})

    def delete(self, final: str) -> None:
        self.ops.append({"op": "delete", "final": final})

    def commit(self, state: State) -> None:
        """Stage the new state, sync, write the commit journal, then apply."""
        staged = self.stage(f"{STATE_DIR}/{STATE_FILE}")
        staged.write_text(state.dumps())
        self.put(staged, f"{STATE_DIR}/{STATE_FILE}")
        filesystems = {os.stat(self.root / d).st_dev: self.root / d for d in self.dirs}
        for anchor in filesystems.values():
            syncfs(anchor)
        checkpoint("staged")
        self._journal("commit")
        self.committing = True
        checkpoint("journal-commit")
        apply_ops(self.root, self.prefix, self.ops)
        (self.root / JOURNAL).unlink()
        fsync_dir((self.root / JOURNAL).parent)
        checkpoint("committed")

    def abort(self) -> None:
        if self.committing:
            return  # the journal stays: the next command (or `recover`) completes the commit
        abort_staging(self.root, self.prefix, self.dirs, self.made)
        (self.root / JOURNAL).unlink(missing_ok=True)


@contextlib.contextmanager
def transaction(root: Path, what: str) -> Iterator[Transaction]:
    """A Transaction undone when the block fails before its commit; a full disk becomes
    one clear error."""
    tx = Transaction(root, what)
    try:
        yield tx
    except BaseException as e:
        tx.abort()
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            where = e.filename or root
            raise UserError(
                f"{where}: no space left on device; free some space and retry (nothing was changed)"
            ) from None
        raise


def apply_ops(root: Path, prefix: str, ops: list[dict[str, str]]) -> None:
    """Renames and deletions, each idempotent so that a replay after a kill converges."""
    for i, op in enumerate(ops):
        final = root / op["final"]
        trash = final.with_name(f"{prefix}old{i}-{final.name}")
        if op["op"] == "put":
            staged = root / op["staged"]
            if os.path.lexists(staged):
                if final.is_dir() and not final.is_symlink() and not os.path.lexists(trash):
                    os.rename(final, trash)
                os.replace(staged, final)
                fsync_dir(final.parent)
        elif os.path.lexists(final):
            if final.is_dir() and not final.is_symlink():
                os.rename(final, trash)
            else:
                final.unlink()
            fsync_dir(final.parent)
        if os.path.lexists(trash):
            _remove(trash)
        checkpoint("commit-op")


def abort_staging(root: Path, prefix: str, dirs: list[str], made: list[str]) -> None:
    for d in dirs:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(root / d):
                if entry.name.startswith(prefix):
                    _remove(Path(entry.path))
    for d in reversed(made):
        with contextlib.suppress(OSError):
            (root / d).rmdir()


def recover_journal(root: Path) -> str | None:
    """Finish or undo an interrupted transaction; what was done, or None."""
    path = root / JOURNAL
    try:
        doc = json.loads(path.read_text())
        phase, what, prefix, ops, dirs, made = (doc[k] for k in ("phase", "what", "prefix", "ops", "dirs", "made"))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        # atomic writes make a torn journal impossible; an unreadable one is not ours to guess at
        raise UserError(f"{path}: unreadable journal; inspect it, then delete it to proceed") from None
    if phase == "commit":
        apply_ops(root, prefix, ops)
        outcome = f"completed the interrupted `{what}`"
    else:
        abort_staging(root, prefix, dirs, made)
        outcome = f"undid the interrupted `{what}`"
    path.unlink()
    fsync_dir(path.parent)
    return outcome
