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
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from distkernel.core import paths
from distkernel.core.cache import flocked, fsync_dir
from distkernel.core.errors import UserError
from distkernel.core.paths import STATE, under_root
from distkernel.target.install.state import PlacedFile, State, on_disk, read_state

JOURNAL = paths.JOURNAL
LOCK = paths.LOCK
RESERVE_BYTES = 256 << 10  # far more than a remove's journal and state need
KILL_ENV = "DISTKERNEL_TEST_KILL_AT"  # test-only: "step" or "step#N" (the N-th time)
_hits: dict[str, int] = {}
_FULL = (errno.ENOSPC, errno.EDQUOT)


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
    return flocked(under_root(root, LOCK))


def folders_a_lock_makes(root: Path) -> list[str]:
    """The state folder and those above it that locking ROOT would create, deepest first."""
    made, here = [], Path(paths.STATE_DIR)
    while here.name and not os.path.lexists(root / here):
        made.append(str(here))
        here = here.parent
    return made


def forget_first_lock(root: Path, made: list[str]) -> None:
    """A refused first command in ROOT leaves it as it was: the lock file goes, and the
    folders MADE for it, when nothing else was written into the state folder. Called
    while holding the lock (a waiter then finds its lock file gone and takes a new one)."""
    if not made:
        return
    with contextlib.suppress(OSError):
        if os.listdir(under_root(root, paths.STATE_DIR)) != [os.path.basename(LOCK)]:
            return
        under_root(root, LOCK).unlink()
        for rel in made:
            os.rmdir(under_root(root, rel))


def keep_reserve(root: Path) -> None:
    """Keep RESERVE_BYTES allocated under the state folder, so that on a full disk the
    journal and state of a remove, a mark-good or a rollback still fit: a write that
    finds no space frees it (see write_small), the end of a transaction takes it back
    (the space the transaction used is free again by then). Best effort."""
    path = under_root(root, paths.JOURNAL_RESERVE)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size >= RESERVE_BYTES:
            return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno not in _FULL:
            raise
        path.unlink(missing_ok=True)


def write_small(root: Path, path: Path, data: bytes, *, sync: bool = False) -> bool:
    """Write a new file of a transaction (journal, state, an entry); on a full disk the
    reserve is given up for it, once (then True). Never leaves a partial file behind."""
    reserve = under_root(root, paths.JOURNAL_RESERVE)
    try:
        _write_new(path, data, sync)
        return False
    except OSError as e:
        if e.errno not in _FULL or not os.path.lexists(reserve):
            raise
    reserve.unlink()
    _write_new(path, data, sync)
    return True


def _write_new(path: Path, data: bytes, sync: bool) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


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
    """Changes to ROOT, staged, then applied from a journal. Every path it writes passes
    `under_root`; a file it would replace must be one distkernel placed (recorded in the
    state) or a staging name of its own: files distkernel did not create are never replaced."""

    def __init__(self, root: Path, what: str):
        self.root = Path(os.path.realpath(root))
        self.what = what
        self.txid = f"{int(time.time())}-{os.getpid()}"
        self.prefix = f".distkernel-{self.txid}-"
        self.dirs: list[str] = []  # where staged entries live
        self.made: list[str] = []  # folders this transaction created (removed on abort when empty)
        self.ops: list[dict[str, str]] = []
        self.committing = False  # past the commit journal: only recovery may finish it
        self.took_reserve = False
        self.owned = owned_paths(read_state(self.root))
        under_root(self.root, JOURNAL).parent.mkdir(parents=True, exist_ok=True)  # made by the lock, usually
        self._journal("staging")

    def _journal(self, phase: str) -> None:
        """Replace the journal atomically. Only the commit journal is fsynced: a staging
        journal lost in a power cut leaves hidden staged names, never an inconsistent
        root, and an fsync per staging folder costs seconds on a busy disk."""
        doc: dict[str, Any] = {"txid": self.txid, "what": self.what, "phase": phase, "prefix": self.prefix}
        doc.update(dirs=self.dirs, made=self.made, ops=self.ops)
        text = json.dumps(doc, indent=1) + "\n"
        path = under_root(self.root, JOURNAL)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.took_reserve |= write_small(self.root, tmp, text.encode(), sync=phase == "commit")
        os.replace(tmp, path)
        if phase == "commit":
            fsync_dir(path.parent)

    def mkdirs(self, rel_dir: str) -> Path:
        """Create a folder (and its parents), remembering the ones that were new."""
        if not rel_dir:
            return self.root
        path = under_root(self.root, rel_dir)
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
        under_root(self.root, final)
        self.mkdirs(parent)
        if parent not in self.dirs:
            self.dirs.append(parent)
            self._journal("staging")
        return under_root(self.root, f"{parent}/{self.prefix}{os.path.basename(final)}")

    def put(self, staged: Path, final: str, *, edit: bool = False) -> None:
        """Rename STAGED over FINAL at commit. A FINAL that exists must be ours, or an
        empty file (nothing is lost); EDIT: a file of the user's we rewrite keeping its
        other lines (loader.conf)."""
        path = under_root(self.root, final)
        if not edit:
            refuse_foreign(self.root, path, final, self.owned)
        self.ops.append({"op": "put", "staged": str(staged.relative_to(self.root)), "final": final})

    def delete(self, final: str) -> None:
        under_root(self.root, final)
        self.ops.append({"op": "delete", "final": final})

    def write(self, staged: Path, data: bytes) -> None:
        """Write a small staged file; on a full disk it may take the reserve."""
        self.took_reserve |= write_small(self.root, staged, data)

    def commit(self, state: State) -> None:
        """Stage the new state, sync, write the commit journal, then apply."""
        staged = self.stage(STATE)
        self.write(staged, state.dumps().encode())
        self.put(staged, STATE)
        filesystems = {os.stat(self.root / d).st_dev: self.root / d for d in self.dirs}
        for anchor in filesystems.values():
            syncfs(anchor)
        checkpoint("staged")
        self._journal("commit")
        self.committing = True
        checkpoint("journal-commit")
        apply_ops(self.root, self.prefix, self.ops)
        journal = under_root(self.root, JOURNAL)
        journal.unlink()
        fsync_dir(journal.parent)
        checkpoint("committed")
        keep_reserve(self.root)

    def abort(self) -> None:
        if self.committing:
            return  # the journal stays: the next command (or `recover`) completes the commit
        abort_staging(self.root, self.prefix, self.dirs, self.made)
        under_root(self.root, JOURNAL).unlink(missing_ok=True)
        if self.took_reserve:
            with contextlib.suppress(OSError):
                keep_reserve(self.root)


def refuse_foreign(root: Path, path: Path, rel: str, owned: Mapping[str, PlacedFile | None]) -> None:
    """PATH (REL under ROOT) may be replaced: it is absent, recorded as ours in OWNED (a
    file: still holding what was placed), or an empty file (nothing to lose). Else a
    one-line UserError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return
    if rel in owned:
        placed = owned[rel]
        if placed is None or on_disk(root, placed):
            return
        why = "was changed since distkernel placed it"
    else:
        why = "was not created by distkernel"
    raise UserError(f"{path}: {why}, and distkernel never replaces such files; move it away and retry")


def owned_paths(state: State) -> dict[str, PlacedFile | None]:
    """Every path the state says distkernel placed: files and shared files (with what
    was placed), folders and its own state (None: owned whole)."""
    out: dict[str, PlacedFile | None] = {STATE: None}
    for k in state.kernels.values():
        out.update((p, None) for p in (*k.dirs, k.modules_dir, k.headers_dir) if p)
        out.update((f.path, f) for f in k.files)
    out.update((f.path, f) for f in state.shared)
    return out


@contextlib.contextmanager
def transaction(root: Path, what: str) -> Iterator[Transaction]:
    """A Transaction undone when the block fails before its commit; a full disk becomes
    one clear error."""
    tx: Transaction | None = None
    try:
        tx = Transaction(root, what)
        yield tx
    except BaseException as e:
        if tx is not None:
            tx.abort()
        if isinstance(e, OSError) and e.errno in _FULL:
            where = e.filename or root
            raise UserError(
                f"{where}: no space left on device; free some space and retry (nothing was changed)"
            ) from None
        raise


def _checked_ops(root: Path, prefix: str, ops: list[dict[str, str]]) -> list[tuple[str, Path, Path | None]]:
    """The journal's operations as paths, every one checked before any is applied."""
    what = f"{root / JOURNAL}: an operation"
    paths.plain_name(prefix, f"{root / JOURNAL}: prefix")
    out: list[tuple[str, Path, Path | None]] = []
    for op in ops:
        kind = op["op"]
        if kind not in ("put", "delete"):
            raise ValueError(f"unknown operation {kind!r}")
        staged = under_root(root, op["staged"], what) if kind == "put" else None
        if staged is not None and not any(part.startswith(prefix) for part in op["staged"].split("/")):
            raise UserError(f"{what} renames {op['staged']!r}, which is not one of its staged files")
        out.append((kind, under_root(root, op["final"], what), staged))
    return out


def _checked_dirs(root: Path, prefix: str, dirs: list[str], made: list[str]) -> tuple[list[Path], list[Path]]:
    what = f"{root / JOURNAL}: a staging folder"
    paths.plain_name(prefix, f"{root / JOURNAL}: prefix")
    staged_in = [under_root(root, d, what) if d else root for d in dirs]  # "": the top of the root
    return staged_in, [under_root(root, d, what) for d in made]


def apply_ops(root: Path, prefix: str, ops: list[dict[str, str]]) -> None:
    """Renames and deletions, each idempotent so that a replay after a kill converges."""
    _apply(prefix, _checked_ops(root, prefix, ops))


def _apply(prefix: str, ops: list[tuple[str, Path, Path | None]]) -> None:
    for i, (kind, final, staged) in enumerate(ops):
        trash = final.with_name(f"{prefix}old{i}-{final.name}")
        if kind == "put":
            assert staged is not None
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
    _unstage(prefix, *_checked_dirs(root, prefix, dirs, made))


def _unstage(prefix: str, staged_in: list[Path], made: list[Path]) -> None:
    for d in staged_in:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(d):
                if entry.name.startswith(prefix):
                    _remove(Path(entry.path))
    for m in reversed(made):
        with contextlib.suppress(OSError):
            m.rmdir()


def recover_journal(root: Path) -> str | None:
    """Finish or undo an interrupted transaction; what was done, or None. A journal that
    cannot be read, or that names a path outside the root, is left for the user."""
    path = under_root(root, JOURNAL)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
        phase, what, prefix, ops, dirs, made = (doc[k] for k in ("phase", "what", "prefix", "ops", "dirs", "made"))
        if phase == "commit":
            checked_ops = _checked_ops(root, prefix, ops)
        else:
            checked_dirs = _checked_dirs(root, prefix, dirs, made)
    except (ValueError, TypeError, KeyError, AttributeError, UserError) as e:
        # atomic writes make a torn journal impossible; an unreadable one is not ours to guess at
        why = f" ({e.message.removeprefix(f'{path}: ')})" if isinstance(e, UserError) else ""
        raise UserError(f"{path}: unreadable journal{why}; inspect it, then delete it to proceed") from None
    if phase == "commit":
        _apply(prefix, checked_ops)
        outcome = f"completed the interrupted `{what}`"
    else:
        _unstage(prefix, *checked_dirs)
        outcome = f"undid the interrupted `{what}`"
    path.unlink()
    fsync_dir(path.parent)
    return outcome
