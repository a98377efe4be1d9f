"""`distkernel modules ...` through the real entry point: errors first (no kernel
needed), then the whole flow with `distkernel install` on a --root sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import load_state
from tests.conftest import Built, assert_user_facing_error, cli
from tests.target.extmod.conftest import EXTMOD


def recorded(root: Path) -> dict[str, bool]:
    """The default kernel's external module outcomes, as `distkernel list --json` shows them."""
    doc = cli("list", "--root", root, "--json").json()
    kernel = next(k for k in doc["kernels"] if k["default"])
    return {m["name"]: m["ok"] for m in kernel["external_modules"]}


def initramfs_members(image: Path) -> list[str]:
    data = subprocess.run(["zstd", "-dc", image], capture_output=True, check=False).stdout
    if not data:
        data = subprocess.run(["gzip", "-dc", image], capture_output=True, check=True).stdout
    return subprocess.run(["cpio", "-t"], input=data, capture_output=True, check=True).stdout.decode().split()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert_user_facing_error(cli("modules", "add", tmp_path, "--root", root), 2, f"--root {root}: not a directory")
    root.mkdir()
    assert_user_facing_error(cli("modules", "add", tmp_path / "nope", "--root", root), 2, "not a folder")
    assert_user_facing_error(cli("modules", "remove", "ghost", "--root", root), 2, "no module 'ghost' is registered")
    assert_user_facing_error(cli("modules", "rebuild", "--root", root), 2, "no module is registered")
    run = cli("modules", "rebuild", "--kernel", "x", "--all", "--root", root)
    assert run.code == 2 and "exclude each other" in run.err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dkms.conf").write_text('PACKAGE_NAME=bad\nPACKAGE_VERSION="1\n')
    assert_user_facing_error(  # bash's own words: the file is sourced as dkms sources it
        cli("modules", "add", bad, "--root", root), 2, "dkms.conf:2: unexpected EOF", "PACKAGE_VERSION is not set"
    )


def test_add_without_kernels_registers_for_the_next_install(tmp_path: Path) -> None:
    run = cli("modules", "add", EXTMOD / "dkms", "--root", tmp_path, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["outcomes"] == [] and "next `distkernel install`" in doc["notes"][0]
    assert doc["modules"][0]["ignored"] == ["POST_INSTALL (not run: the root is not this machine)"]
    listed = cli("modules", "list", "--root", tmp_path, "--json").json()
    assert [(e["module"]["name"], e["kernels"]) for e in listed] == [("dk_dkms", [])]
    assert cli("modules", "remove", "dk_dkms", "--root", tmp_path).code == 0
    assert "no external module" in cli("modules", "list", "--root", tmp_path).out


@pytest.mark.kernel
def test_install_builds_modules_before_the_initramfs_and_survives_a_broken_one(installed: tuple[Path, str]) -> None:
    root, release = installed
    state = load_state(root)
    assert state.default == release  # the broken module is not --required
    record = state.kernels[release]
    assert {m.name: m.ok for m in record.external_modules} == {"broken": False, "dk_plain": True}
    assert f"lib/modules/{release}/updates/dk_plain.ko" in initramfs_members(root / record.initrd)
    listed = {e["module"]["name"]: e["kernels"] for e in cli("modules", "list", "--root", root, "--json").json()}
    assert listed["dk_plain"][0]["status"] == "built"
    assert listed["broken"][0]["status"] == "failed" and Path(listed["broken"][0]["log"]).is_file()
    text = cli("modules", "list", "--root", root).out
    assert "failed" in text and "this_symbol_does_not_exist" in text


@pytest.mark.kernel
def test_add_rebuild_remove_on_installed_kernels(installed: tuple[Path, str]) -> None:
    root, release = installed
    run = cli("modules", "add", EXTMOD / "dkms", "--initramfs", "--root", root, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert [(o["release"], o["status"]) for o in doc["outcomes"]] == [(release, "built")]
    assert doc["initramfs_refreshed"] == [release]
    initrd = root / load_state(root).kernels[release].initrd
    members = initramfs_members(initrd)
    assert f"lib/modules/{release}/extra/dk_dkms.ko" in members
    assert f"lib/modules/{release}/updates/dk_plain.ko" in members
    assert recorded(root) == {"broken": False, "dk_dkms": True, "dk_plain": True}

    run = cli("modules", "rebuild", "--all", "--root", root, "--json")
    assert run.code == 1  # the broken module still fails: reported, exit 1
    statuses = {o["name"]: o["status"] for o in run.json()["outcomes"]}
    assert statuses == {"broken": "failed", "dk_dkms": "built", "dk_plain": "built"}
    assert recorded(root) == {"broken": False, "dk_dkms": True, "dk_plain": True}

    run = cli("modules", "rebuild", "dk_plain", "--root", root, "--json")  # the default kernel
    assert run.code == 0, run.err
    assert [(o["name"], o["release"]) for o in run.json()["outcomes"]] == [("dk_plain", release)]
    assert_user_facing_error(
        cli("modules", "rebuild", "--kernel", "9.9", "--root", root), 2, "--kernel 9.9: not installed"
    )

    run = cli("modules", "remove", "dk_dkms", "--root", root, "--json")
    assert run.code == 0, run.err
    assert not (root / "lib/modules" / release / "extra/dk_dkms.ko").exists()
    assert "dk_dkms" not in (root / "lib/modules" / release / "modules.dep").read_text()
    assert not any("dk_dkms" in m for m in initramfs_members(initrd))
    assert "dk_dkms" not in cli("modules", "list", "--root", root).out
    assert recorded(root) == {"broken": False, "dk_plain": True}


@pytest.mark.kernel
def test_a_required_module_that_fails_keeps_the_kernel_from_becoming_default(
    default_package: Built, tmp_path: Path
) -> None:
    assert cli("modules", "add", EXTMOD / "broken", "--required", "--root", tmp_path).code == 0
    run = cli("install", default_package.package, "--root", tmp_path, "--json")
    assert run.code in (0, 1), run.err
    state = load_state(tmp_path)
    release = default_package.metadata["kernel_release"]
    assert release in state.kernels and state.kernels[release].bootable is False
    assert state.default != release


@pytest.mark.kernel
def test_add_required_that_fails_for_the_default_kernel_keeps_it(installed: tuple[Path, str]) -> None:
    root, release = installed  # runs last: it makes `broken` required in the shared root
    run = cli("modules", "add", EXTMOD / "broken", "--required", "--root", root)
    assert run.code == 1 and "Traceback" not in run.err
    (line,) = [x for x in run.err.splitlines() if x.startswith("distkernel: error: ")]
    assert f"required module broken failed to build for the default kernel {release}" in line
    assert Path(line.split("(log: ")[1].split(")")[0]).is_file()
    state = load_state(root)
    assert state.default == release and state.kernels[release].bootable
    assert recorded(root)["broken"] is False
