"""Where distkernel keeps its caches, and the file primitives every stage shares:
content hashes (memoised by stat), atomic writes, locks and staged directories."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from distkernel.core.errors import ToolError

CHUNK = 1 << 20


def cache_root() -> Path:
    """$DISTKERNEL_CACHE, else $XDG_CACHE_HOME/distkernel, else ~/.cache/distkernel."""
    explicit = os.environ.get("DISTKERNEL_CACHE")
    if explicit:
        return Path(explicit).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "distkernel").resolve()


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(top: Path, parts: tuple[str, ...]) -> str:
    """The bytes of the files under TOP's PARTS (folders, whole, or single files), names
    included, cache folders excluded: a fingerprint of code that decides a cache entry."""
    h = hashlib.sha256()
    files = (f for part in parts for f in ([top / part] if (top / part).is_file() else (top / part).rglob("*")))
    for f in sorted(files):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(top)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def sha256_file_memo(path: Path) -> str:
    """sha256 of a (large, rarely changing) file, remembered by its stat so that a
    no-op build does not re-read a 140 MB source tarball."""
    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_dev}"
    memo = cache_dir("hashes") / sha256_bytes(str(path.resolve()).encode())
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(memo.read_text())
        if saved["stamp"] == stamp:
            return str(saved["sha256"])
    digest = sha256_file(path)
    atomic_write_text(memo, json.dumps({"path": str(path), "stamp": stamp, "sha256": digest}))
    return digest


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a sibling temporary file, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode(), mode)


def atomic_copy(src: Path, dst: Path, *, link: bool = False) -> None:
    """Copy `src` to `dst` so that `dst` is either absent or complete. With `link`, a
    hard link where the file system allows one (no bytes copied): for files that are
    only ever replaced whole, never written in place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        if not (link and _hard_link(src, tmp)):
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dst.parent)


def _hard_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
        return True
    except OSError:  # another file system (EXDEV), or one without hard links
        return False


def lowest_priority() -> None:
    """The calling thread at nice 19. Linux's nice is per thread, and the threads and
    processes this one starts inherit it."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


@contextlib.contextmanager
def emptied(path: Path) -> Iterator[None]:
    """PATH gone at once (renamed aside) for the block, its files removed meanwhile by a
    thread: the tree of a finished kernel build (5,000 files) takes 0.4 s to remove,
    nearly all of it waiting on the disk, which the block's own work overlaps. Trees a
    killed run left aside go too; all are gone when the block ends."""
    aside = path.with_name(f"{path.name}.gone-{os.getpid()}")
    leftovers = [p for p in path.parent.glob(f"{path.name}.gone-*") if p != aside]
    try:
        os.rename(path, aside)
        leftovers.append(aside)
    except FileNotFoundError:
        pass

    def remove() -> None:
        lowest_priority()  # the block's own work (a compile) comes first
        for tree in leftovers:
            shutil.rmtree(tree, ignore_errors=True)

    remover = threading.Thread(target=remove, name="emptied")
    remover.start()
    try:
        yield
    finally:
        remover.join()


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on PATH (created when missing) for the block."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            except OSError as e:  # ENOSYS: a kernel built without CONFIG_FILE_LOCKING
                raise ToolError(
                    f"{path}: cannot lock it ({e.strerror}); the running kernel needs file locking "
                    "(CONFIG_FILE_LOCKING=y, which the systemd feature profile brings)"
                ) from None
            try:
                # The holder may remove the lock file before letting go (a refused first
                # install leaves the root as it found it): a lock on a removed file is none.
                if _is_file_at(f.fileno(), path):
                    yield
                    return
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_ino, st.st_dev) == (own.st_ino, own.st_dev)


def locked(name: str) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock on a cache entry (`src-<key>`, `build-<id>`); lock files live
    apart from the entries."""
    return flocked(cache_dir("locks") / f"{name}.lock")


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty sibling directory; rename it to `final` when the block succeeds,
    remove it when it fails. `final` must not exist yet."""
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = final.with_name(f".{final.name}.stage-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        os.replace(stage, final)
        fsync_dir(final.parent)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
