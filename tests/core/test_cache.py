"""The cache's file lock: a holder may remove its lock file before letting go (a refused
first install leaves a root as it found it); a waiter then takes a lock that exists."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from distkernel.core.cache import emptied, flocked, lowest_priority


def test_a_waiter_whose_lock_file_was_removed_takes_a_new_one(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "lock"
    seen: list[int] = []

    def waiter() -> None:
        with flocked(lock):
            st = os.stat(lock)  # the file it holds is the one at the path
            seen.append(st.st_ino)

    with flocked(lock):
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)  # let the waiter open the old file and block on it
        lock.unlink()
    t.join(timeout=30)
    assert len(seen) == 1 and lock.exists()
    assert os.stat(lock).st_ino == seen[0]


def test_two_holders_never_overlap(tmp_path: Path) -> None:
    lock, inside, overlaps = tmp_path / "lock", [0], [0]

    def worker() -> None:
        for _ in range(50):
            with flocked(lock):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0


def test_emptied_sets_the_tree_aside_at_once_and_removes_it_and_leftovers(tmp_path: Path) -> None:
    work = tmp_path / "build-fresh"
    (work / "obj" / "deep").mkdir(parents=True)
    (work / "obj" / "deep" / "f.o").write_bytes(b"x")
    killed = tmp_path / "build-fresh.gone-1"  # what a killed run left aside
    (killed / "obj").mkdir(parents=True)
    other = tmp_path / "build-other"
    other.mkdir()
    with emptied(work):
        assert not work.exists()  # the block starts on an empty place
        work.mkdir()
        (work / "new").write_text("kept")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build-fresh", "build-other"]
    assert (work / "new").read_text() == "kept"
    with emptied(tmp_path / "never-made"):  # nothing to set aside
        pass


def test_lowest_priority_lowers_the_calling_thread_only() -> None:
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = nice()
    seen: list[int] = []

    def work() -> None:
        lowest_priority()
        seen.append(nice())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [19]
    assert nice() == before
