"""distkernel's mark-good unit on a root that runs systemd: install places it with a kernel
on trial, enabled as `systemctl enable` would (a static wants link), owned by the state:
kept and never duplicated by later commits, taken away with the last counting kernel;
a `systemctl disable` in the root and an administrator's own unit are left alone; a
kernel on trial where nothing could mark it good is refused, the root unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import install_package, mark_good, remove_kernel
from distkernel.target.install.markgood import data, unit_text
from tests.conftest import cli
from tests.hostile import snapshot
from tests.target.install.helpers import consistent, fake_package, make_root

NAME = data()["unit_file"]
UNIT = data()["unit"]
WANTS = data()["wants"]
LINK = data()["link"]
ENABLED_LINK = data()["enabled_link"]


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out / r, r) for r in ("6.1.0-fake", "6.2.0-fake")}


def systemd_root(path: Path, *, command: bool = True, bless: bool = False) -> Path:
    """A root that runs systemd (its binary, as Debian's systemd package puts it), with
    distkernel installed where pip puts it (COMMAND) and systemd-bless-boot (BLESS)."""
    root = make_root(path)
    (root / "efi/EFI").mkdir(parents=True)
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    executables = ["usr/lib/systemd/systemd"]
    executables += ["usr/local/bin/distkernel"] if command else []
    executables += ["usr/lib/systemd/systemd-bless-boot"] if bless else []
    for rel in executables:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("#!/bin/sh\n")
        (root / rel).chmod(0o755)
    return root


def shared_paths(root: Path) -> list[str]:
    return sorted(f.path for f in consistent(root).shared)


needs_systemctl = pytest.mark.skipif(not shutil.which("systemctl"), reason="needs systemctl (systemd)")


def systemctl(root: Path, *args: str) -> str:
    """The real systemctl on ROOT's unit files (offline: nothing of this machine's)."""
    done = subprocess.run(["systemctl", f"--root={root}", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


@needs_systemctl
@pytest.mark.parametrize("layout", ["bls", "grub"])
def test_a_kernel_on_trial_gets_the_mark_good_unit_enabled_once_and_owned_by_the_state(
    pkgs: dict[str, Path], tmp_path: Path, layout: str
) -> None:
    root = systemd_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout=layout, initramfs="none")
    assert (root / UNIT).read_bytes() == unit_text()
    assert os.readlink(root / WANTS) == LINK
    assert systemctl(root, "is-enabled", NAME) == "enabled"  # systemd's own verdict
    assert {UNIT, WANTS} <= set(shared_paths(root))
    before = snapshot(root / "etc/systemd")
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout=layout, initramfs="none")
    assert snapshot(root / "etc/systemd") == before  # idempotent: nothing rewritten, nothing added
    assert shared_paths(root).count(UNIT) == 1
    remove_kernel(root, "6.1.0-fake")
    assert (root / UNIT).is_file() and (root / WANTS).is_symlink()
    remove_kernel(root, "6.2.0-fake", keep_last=False)  # the last kernel takes it away
    assert not os.path.lexists(root / UNIT) and not os.path.lexists(root / WANTS)
    assert shared_paths(root) == []
    assert systemctl(root, "is-enabled", NAME) == ""  # no such unit


@needs_systemctl
def test_a_unit_copied_by_hand_and_enabled_by_systemctl_is_taken_over(pkgs: dict[str, Path], tmp_path: Path) -> None:
    """What the docs said before install placed it: the same unit (now ours), enabled by
    systemctl (its absolute link: the enablement stays the administrator's)."""
    root = systemd_root(tmp_path / "r")
    (root / UNIT).write_bytes(unit_text())
    systemctl(root, "enable", NAME)
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    assert UNIT in shared_paths(root) and WANTS not in shared_paths(root)
    assert os.readlink(root / WANTS) == ENABLED_LINK


@needs_systemctl
def test_systemctl_disable_in_the_root_is_kept(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = systemd_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    systemctl(root, "disable", NAME)
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")
    assert systemctl(root, "is-enabled", NAME) == "disabled"
    assert (root / UNIT).read_bytes() == unit_text()
    systemctl(root, "enable", NAME)  # again: kept as systemctl made it
    mark_good(root)
    assert os.readlink(root / WANTS) == ENABLED_LINK and systemctl(root, "is-enabled", NAME) == "enabled"


def test_an_administrators_own_unit_and_its_link_are_left_alone(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = systemd_root(tmp_path / "r")
    (root / UNIT).write_text(
        "[Service]\nExecStart=/usr/local/bin/my-own-mark-good\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    os.symlink(ENABLED_LINK, root / WANTS)
    before = snapshot(root / "etc/systemd")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    assert snapshot(root / "etc/systemd") == before
    assert shared_paths(root) == sorted(set(shared_paths(root)) - {UNIT, WANTS})
    remove_kernel(root, "6.1.0-fake", keep_last=False)
    assert snapshot(root / "etc/systemd") == before


def test_a_unit_of_ours_changed_in_the_root_becomes_the_administrators(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = systemd_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    (root / UNIT).write_bytes(unit_text() + b"# mine now\n")
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")
    assert (root / UNIT).read_bytes().endswith(b"# mine now\n") and (root / WANTS).is_symlink()
    assert UNIT not in shared_paths(root)


@pytest.mark.parametrize(
    ("layout", "systemd", "command"),
    [("plain", True, True), ("bls", False, True), ("grub", False, False)],
    ids=["plain-has-no-trial", "bls-without-systemd", "grub-without-systemd"],
)
def test_no_unit_where_no_trial_or_no_systemd(
    pkgs: dict[str, Path], tmp_path: Path, layout: str, systemd: bool, command: bool
) -> None:
    root = systemd_root(tmp_path / "r", command=command) if systemd else make_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout=layout, initramfs="none")
    assert not os.path.lexists(root / UNIT) and not os.path.lexists(root / WANTS)


def test_bls_where_only_systemd_bless_boot_marks_good_installs_without_the_unit(
    pkgs: dict[str, Path], tmp_path: Path
) -> None:
    """No distkernel in the root: the unit could not run (a failed unit, a degraded
    system); systemd-bless-boot marks the entry good, which distkernel reads."""
    root = systemd_root(tmp_path / "r", command=False, bless=True)
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    assert not os.path.lexists(root / UNIT)


@pytest.mark.parametrize(("layout", "bless"), [("grub", True), ("bls", False)])
def test_a_kernel_on_trial_is_refused_where_nothing_could_mark_it_good(
    pkgs: dict[str, Path], tmp_path: Path, layout: str, bless: bool
) -> None:
    """grub: only distkernel's unit ends a trial (its first kernel, with nothing to fall
    back to, is not on trial: installed); bls without systemd-bless-boot either."""
    root = systemd_root(tmp_path / "r", command=False, bless=bless)
    if layout == "grub":
        install_package(pkgs["6.1.0-fake"], root, layout=layout, initramfs="none")
        mark_good(root)
    before = snapshot(root)
    run = cli("install", pkgs["6.2.0-fake"], "--root", root, "--layout", layout, "--initramfs", "none")
    assert run.code == 2 and "Traceback" not in run.err, run.err
    assert len(run.err.strip().splitlines()) == 1, run.err
    line = run.err.strip()
    assert line.startswith(f"distkernel: error: --root {root}: a {layout} kernel goes on trial there")
    assert "install distkernel into the root first" in line
    assert snapshot(root) == before  # nothing written (for bls: not even the state folder)


def test_dry_run_lists_the_unit_and_its_link_and_writes_nothing(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = systemd_root(tmp_path / "r")
    before = snapshot(root)
    run = cli("install", pkgs["6.1.0-fake"], "--root", root, "--layout", "bls", "--dry-run", "--json")
    assert run.code == 0, run.err
    assert {UNIT, WANTS} <= set(run.json()["rewrite"])
    assert snapshot(root) == before
    plain = cli("install", pkgs["6.1.0-fake"], "--root", root, "--layout", "plain", "--dry-run", "--json")
    assert UNIT not in plain.json()["rewrite"]  # nothing on trial: no unit
