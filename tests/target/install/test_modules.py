"""`modules add/rebuild/remove` on a root where a (fake) kernel is installed: install's
per-kernel record of module outcomes follows each command (`list --json`), and the
commands wait for install's root lock, so an install or a prune cannot race them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distkernel.target.install import install_package, load_state
from distkernel.target.install.transaction import LOCK, root_lock
from tests.conftest import cli
from tests.target.extmod.conftest import FAKE_MAKEFILE, fake_module
from tests.target.install.helpers import consistent, fake_package, make_root

RELEASE = "6.1.0-fake"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"))


def installed_root(path: Path, pkg: Path, initramfs: str = "none") -> Path:
    """A root with the fake kernel installed; its headers build modules with the host compiler."""
    root = make_root(path)
    install_package(pkg, root, layout="plain", initramfs=initramfs, with_headers=True)
    (root / f"usr/src/linux-headers-{RELEASE}/Makefile").write_text(FAKE_MAKEFILE)
    return root


def listed_modules(root: Path) -> dict[str, dict[str, object]]:
    run = cli("list", "--root", root, "--json")
    assert run.code == 0, run.err
    (kernel,) = run.json()["kernels"]
    return {m["name"]: m for m in kernel["external_modules"]}


def test_list_follows_add_a_failing_rebuild_and_remove(pkg: Path, tmp_path: Path) -> None:
    root = installed_root(tmp_path / "r", pkg)
    assert cli("modules", "add", fake_module(tmp_path, "dk_a"), "--root", root).code == 0
    assert listed_modules(root)["dk_a"]["ok"] is True

    headers = root / f"usr/src/linux-headers-{RELEASE}/Makefile"
    headers.write_text("modules:\n\t@echo 'error: the compiler went away'; false\n")
    run = cli("modules", "rebuild", "dk_a", "--root", root)
    assert run.code == 1
    failed = listed_modules(root)["dk_a"]
    assert failed["ok"] is False and "error: the compiler went away" in str(failed["reason"])
    assert "(previous build kept)" in str(failed["reason"]) and Path(str(failed["log"])).is_file()
    assert "FAILED: dk_a" in cli("list", "--root", root).out
    consistent(root)

    headers.write_text(FAKE_MAKEFILE)
    assert cli("modules", "rebuild", "--root", root).code == 0
    assert listed_modules(root)["dk_a"]["ok"] is True
    assert cli("modules", "remove", "dk_a", "--root", root).code == 0
    assert listed_modules(root) == {}
    consistent(root)


def test_a_failed_build_is_removed_from_the_record_too(pkg: Path, tmp_path: Path) -> None:
    root = installed_root(tmp_path / "r", pkg)
    assert cli("modules", "add", fake_module(tmp_path, "bad", body="this is not C\n"), "--root", root).code == 1
    assert listed_modules(root)["bad"]["ok"] is False
    assert cli("modules", "remove", "bad", "--root", root).code == 0
    assert listed_modules(root) == {}


def test_an_initramfs_module_refresh_under_the_same_lock(pkg: Path, tmp_path: Path) -> None:
    """add takes the root lock, then refreshes the initramfs (which needs it too): no deadlock."""
    root = installed_root(tmp_path / "r", pkg, initramfs="builtin")
    before = load_state(root).kernels[RELEASE]
    run = cli("modules", "add", fake_module(tmp_path, "dk_i"), "--initramfs", "--root", root, "--json")
    assert run.code == 0, run.err
    assert run.json()["initramfs_refreshed"] == [RELEASE]
    after = load_state(root).kernels[RELEASE]
    assert after.initramfs_modules == ("dk_i",) and after.files != before.files
    assert [m.name for m in after.external_modules] == ["dk_i"]
    consistent(root)


def _blocked_on(lock: Path, pid: int) -> bool:
    """/proc/locks lists a process waiting for a flock as `N: -> FLOCK ... PID MAJ:MIN:INODE ...`."""
    inode = f":{os.stat(lock).st_ino} "
    return any(
        "->" in line and line.split()[5] == str(pid) and inode in line
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_modules_add_waits_for_installs_root_lock(pkg: Path, tmp_path: Path) -> None:
    root = installed_root(tmp_path / "r", pkg)
    src = fake_module(tmp_path, "dk_w")
    argv = [sys.executable, "-m", "distkernel", "modules", "add", str(src), "--root", str(root)]
    with root_lock(root):  # as an install or a prune holds it
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):
                if _blocked_on(root / LOCK, proc.pid) or proc.poll() is not None:
                    break
                time.sleep(0.05)
            assert _blocked_on(root / LOCK, proc.pid), proc.communicate()
            assert not (root / "var/lib/distkernel/modules/dk_w").exists()  # nothing done before the lock
        except BaseException:
            proc.kill()
            raise
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert listed_modules(root)["dk_w"]["ok"] is True


def test_a_required_module_failing_for_the_default_kernel_leaves_it_the_default(pkg: Path, tmp_path: Path) -> None:
    root = installed_root(tmp_path / "r", pkg)  # RELEASE, the default
    newer = "6.1.1-newer"
    install_package(fake_package(tmp_path / "newer", newer), root, layout="plain", initramfs="none", with_headers=True)
    (root / f"usr/src/linux-headers-{newer}/Makefile").write_text(FAKE_MAKEFILE)
    assert load_state(root).default == newer

    run = cli("modules", "add", fake_module(tmp_path, "zfs", body="this is not C\n"), "--required", "--root", root)
    assert run.code == 1 and "Traceback" not in run.err
    assert f"zfs failed for {RELEASE}" in run.err  # the older kernel's failure: listed as usual
    (line,) = [x for x in run.err.splitlines() if x.startswith("distkernel: error: ")]
    assert f"required module zfs failed to build for the default kernel {newer}" in line
    assert f"{newer} stays the default" in line
    log = Path(line.split("(log: ")[1].split(")")[0])
    assert log.is_file() and "this is not C" in log.read_text()
    state = consistent(root)
    assert state.default == newer and state.kernels[newer].bootable  # it was booting without zfs
    assert not state.kernels[RELEASE].bootable  # rollback must not pick a kernel without zfs
    assert {m.name: (m.ok, m.required) for m in state.kernels[newer].external_modules} == {"zfs": (False, True)}

    run = cli("modules", "rebuild", "--root", root, "--json")  # the default kernel again: same report
    assert run.code == 1 and run.json()["default"] == newer and "stays the default" in run.err
    good = fake_module(tmp_path / "fixed", "zfs")
    assert cli("modules", "add", good, "--required", "--root", root).code == 0
    state = consistent(root)
    assert state.default == newer and all(k.bootable for k in state.kernels.values())
