"""update_module_records: one kernel's record of external module outcomes, changed in a
journaled transaction under the root's lock; what a --required failure does to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.install import ModuleRecord, hold, install_package, load_state, rollback, update_module_records
from distkernel.target.install.transaction import KILL_ENV
from tests.target.install.helpers import consistent, fake_package, make_root

OLD, NEW = "6.1.0-old", "6.1.1-new"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "r")
    for release in (OLD, NEW):
        install_package(fake_package(tmp_path / release, release), root, layout="plain", initramfs="none")
    assert load_state(root).default == NEW
    return root


def zfs(ok: bool) -> ModuleRecord:
    return ModuleRecord("zfs", "2.2", ok, required=True, reason="" if ok else "error: x", log="/l")


def test_records_change_and_are_forgotten(root: Path) -> None:
    update_module_records(root, NEW, changed=[zfs(True), ModuleRecord("b", "1", False, False, "no")])
    assert [(m.name, m.ok) for m in load_state(root).kernels[NEW].external_modules] == [("b", False), ("zfs", True)]
    update_module_records(root, NEW, changed=[ModuleRecord("b", "1", True, False)], removed=["zfs"])
    assert [(m.name, m.ok) for m in load_state(root).kernels[NEW].external_modules] == [("b", True)]
    consistent(root)


def test_a_required_failure_keeps_the_default_but_rollback_skips_the_kernel(root: Path) -> None:
    update_module_records(root, NEW, changed=[zfs(False)])
    update_module_records(root, OLD, changed=[zfs(False)])
    state = consistent(root)
    assert state.default == NEW and state.kernels[NEW].bootable  # it was booting without zfs
    assert not state.kernels[OLD].bootable
    with pytest.raises(UserError, match="no earlier bootable kernel"):
        rollback(root)
    update_module_records(root, OLD, changed=[zfs(True)])
    assert load_state(root).kernels[OLD].bootable
    assert rollback(root).default == OLD


def test_a_kill_at_the_commit_is_completed_by_the_next_command(root: Path) -> None:
    code = (
        "from distkernel.target.install import ModuleRecord, update_module_records;"
        f"update_module_records({str(root)!r}, {NEW!r}, changed=[ModuleRecord('m', '1', True, False)])"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, KILL_ENV: "journal-commit"}, check=False)
    assert proc.returncode == -9
    assert [m.name for m in load_state(root).kernels[NEW].external_modules] == ["m"]
    consistent(root)


def test_held_lock_serves_several_changes(root: Path) -> None:
    with hold(root) as held:
        held.update_modules(NEW, changed=[ModuleRecord("m", "1", True, False)])
        held.update_modules(NEW, removed=["m"])
        assert held.state().kernels[NEW].external_modules == ()
