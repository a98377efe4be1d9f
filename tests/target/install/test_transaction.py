"""Kill an install or a remove at every step boundary; the next command (or `recover`)
must leave a consistent root. A full disk must fail cleanly with the old state intact.
Also: a lock serializes two runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from distkernel.target.install import install_package, load_state
from distkernel.target.install.transaction import KILL_ENV
from tests.conftest import assert_user_facing_error, cli, env_with
from tests.target.install.helpers import consistent, fake_package, make_root

INSTALL_STEPS = ["locked", "extracted", "depmod", "extmod", "initramfs", "layout", "staged", "journal-commit"]
REMOVE_STEPS = ["locked", "staged", "journal-commit"]
OLD, NEW = "6.1.0-old", "6.1.0-new"


RUNNER = """
import sys
from pathlib import Path
from distkernel.target.install import install_package, remove_kernel
if sys.argv[1] == "install":
    install_package(Path(sys.argv[2]), Path(sys.argv[3]), layout=sys.argv[4], initramfs=sys.argv[5])
else:
    remove_kernel(Path(sys.argv[3]), sys.argv[2])
"""


def killed(point: str, *args: str | Path) -> int:
    """Run one library call in a child that dies at `point`; its exit status."""
    env = env_with(**{KILL_ENV: point})
    return subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], env=env, check=False).returncode


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".distkernel-" in p.name]


def kill_points(steps: list[str]) -> Iterator[str]:
    yield from steps
    yield from (f"commit-op#{n}" for n in range(1, 40))
    yield "committed"


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out, r) for r in (OLD, NEW)}


@pytest.mark.parametrize(
    ("layout", "initramfs"), [("plain", "builtin"), ("bls", "none"), ("uki", "none"), ("grub", "none")]
)
def test_install_killed_at_every_step(pkgs: dict[str, Path], tmp_path: Path, layout: str, initramfs: str) -> None:
    seen_after_commit = 0
    for i, point in enumerate(kill_points(INSTALL_STEPS)):
        root = make_root(tmp_path / f"r{i}")
        install_package(pkgs[OLD], root, layout=layout, initramfs=initramfs)
        code = killed(point, "install", pkgs[NEW], root, layout, initramfs)
        if code == 0:  # past the last commit operation: the kill point does not exist
            assert point.startswith("commit-op")
            break
        assert code == -9, point
        state = consistent(root)  # the next command settles the root first
        assert not leftovers(root), (point, leftovers(root))
        committed = point in ("journal-commit", "committed") or point.startswith("commit-op")
        assert set(state.kernels) == ({OLD, NEW} if committed else {OLD}), point
        assert state.default == (NEW if committed else OLD), point
        seen_after_commit += committed
    assert seen_after_commit >= 5  # several kills landed between the renames


def test_remove_killed_at_every_step(pkgs: dict[str, Path], tmp_path: Path) -> None:
    for i, point in enumerate(kill_points(REMOVE_STEPS)):
        root = make_root(tmp_path / f"r{i}")
        install_package(pkgs[OLD], root, layout="plain", initramfs="none")
        install_package(pkgs[NEW], root, layout="plain", initramfs="none")
        code = killed(point, "remove", NEW, root)
        if code == 0:
            break
        assert code == -9, point
        done = cli("recover", "--root", root)
        assert done.code == 0, done.err
        state = consistent(root)
        assert not leftovers(root)
        committed = point != "locked" and point != "staged"
        assert set(state.kernels) == ({OLD} if committed else {OLD, NEW}), point
        assert (root / f"usr/lib/modules/{NEW}").exists() != committed
        assert state.default == (OLD if committed else NEW)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_is_a_clean_error(pkgs: dict[str, Path], tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "6m") as disk:
        root = make_root(disk / "root")
        install_package(pkgs[OLD], root, layout="plain", initramfs="builtin")
        before = load_state(root)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(disk / "filler", "wb") as f:  # leave less than one initramfs
            f.write(b"\0" * (free - 300_000))
        run = cli("install", pkgs[NEW], "--root", root, "--layout", "plain")
        assert_user_facing_error(run, 2, "no space left on device")
        assert load_state(root) == before
        consistent(root)
        assert not leftovers(root)


def test_second_run_waits_for_the_lock(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "var/lib/distkernel").mkdir(parents=True)
    with open(root / "var/lib/distkernel/lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        proc = subprocess.Popen(
            [sys.executable, "-m", "distkernel", "install", pkgs[OLD], "--root", root, "--initramfs", "none"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        assert not (root / f"usr/lib/modules/{OLD}").exists()
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert proc.wait(timeout=60) == 0
    consistent(root)


@pytest.mark.parametrize("text", ["{torn", '{"phase": "commit"}', "[]"])
def test_an_unreadable_journal_is_one_clear_line(tmp_path: Path, text: str) -> None:
    root = make_root(tmp_path / "r")
    journal = root / "var/lib/distkernel/journal.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(text)
    assert_user_facing_error(cli("recover", "--root", root), 2, "unreadable journal")
    assert journal.read_text() == text  # not ours to guess at: left for the user


def fill(disk: Path) -> None:
    """Take every free block of DISK (a file written until the filesystem refuses)."""
    with open(disk / "filler", "ab", buffering=0) as f:
        for size in (65536, 512):  # then the last partial block
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_remove_mark_good_and_recover_work_on_a_full_disk(pkgs: dict[str, Path], tmp_path: Path) -> None:
    """The commands that free space or only record a fact must not need any: the journal
    and the new state use the space kept in reserve."""
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        root = make_root(disk / "root")
        install_package(pkgs[OLD], root, layout="plain", initramfs="none")
        install_package(pkgs[NEW], root, layout="plain", initramfs="none")
        fill(disk)
        with pytest.raises(OSError):
            (disk / "probe").write_bytes(b"x" * 4096)  # really full
        done = cli("mark-good", "--root", root)
        assert done.code == 0, done.err
        assert load_state(root).kernels[NEW].known_good
        fill(disk)  # whatever the mark-good gave back
        done = cli("remove", OLD, "--root", root)
        assert done.code == 0, done.err
        assert set(load_state(root).kernels) == {NEW}
        fill(disk)
        done = cli("recover", "--root", root)
        assert done.code == 0, done.err
        consistent(root)
        assert not leftovers(root)
        assert not [p for p in (root / "var/lib/distkernel").iterdir() if ".tmp-" in p.name]  # no journal temp file
