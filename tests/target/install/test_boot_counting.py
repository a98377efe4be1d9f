"""Boot counting on the install side (bls and uki): a new entry is NAME+TRIES; loader.conf's
`default` keeps selecting it in every counter state and lets systemd-boot fall back;
list, remove, rollback, mark-good and recover find the entry under whatever name the
boot loader (a try: NAME+LEFT-DONE) or systemd-bless-boot (NAME) gave it. The renames
here are the ones systemd-boot and systemd-bless-boot make (test_boot_counting.py under
tests/workflows/boottest shows systemd-boot making them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import install_package, mark_good, remove_kernel, rollback
from distkernel.target.install.counting import Tries, counted, split, version_key
from distkernel.target.install.target import layouts_data
from tests.conftest import cli
from tests.target.install.helpers import consistent, fake_package, make_root

TOKEN = "0123456789abcdef0123456789abcdef"
TRIES = int(layouts_data()["bls"]["tries"])
ENTRIES = "efi/loader/entries"
UKIS = "efi/EFI/Linux"


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out / r, r) for r in ("6.1.0-fake", "6.2.0-fake", "6.3.0-fake")}


def esp_root(path: Path) -> Path:
    root = make_root(path)
    (root / "efi/EFI").mkdir(parents=True)
    return root


def names(root: Path, folder: str = ENTRIES) -> list[str]:
    return sorted(p.name for p in (root / folder).iterdir())


def default_line(root: Path) -> str:
    return next(
        line for line in (root / "efi/loader/loader.conf").read_text().splitlines() if line.startswith("default")
    )


def rename(root: Path, old: str, new: str, folder: str = ENTRIES) -> None:
    """What systemd-boot (one try) or systemd-bless-boot (a good boot) does."""
    (root / folder / old).rename(root / folder / new)


def test_counter_names_are_the_specs() -> None:
    assert counted("a-6.1.conf", 3) == "a-6.1+3.conf"
    assert counted("a-6.1+2-1.conf", 3) == "a-6.1+3.conf"
    assert counted("a-6.1.conf", 0) == "a-6.1.conf"
    assert split("a-6.1+2-1.conf") == ("a-6.1.conf", Tries(2, 1))
    assert split("a-6.1+0-3.efi") == ("a-6.1.efi", Tries(0, 3))
    assert split("a-6.1+.conf") == ("a-6.1+.conf", None)  # a release ending in +: no counter
    assert version_key("6.10.0") > version_key("6.9.1") > version_key("6.9.1~rc1")


def test_a_new_bls_entry_is_on_trial_and_the_loader_default_covers_every_counter_state(
    pkgs: dict[str, Path], tmp_path: Path
) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    assert names(root) == [f"{TOKEN}-6.1.0-fake+{TRIES}.conf"]
    # systemd-boot compares the glob with the file name, counter included.
    assert default_line(root) == f"default {TOKEN}-*"
    run = cli("list", "--root", root, "--json")
    assert run.json()["kernels"][0]["boot"] == f"on trial: {TRIES} tries left, 0 done"
    rename(root, f"{TOKEN}-6.1.0-fake+{TRIES}.conf", f"{TOKEN}-6.1.0-fake+{TRIES - 1}-1.conf")
    consistent(root)  # recover's checks find the renamed entry
    run = cli("list", "--root", root, "--json")
    assert run.json()["kernels"][0]["boot"] == f"on trial: {TRIES - 1} tries left, 1 done"


def test_mark_good_removes_the_counter_and_names_the_entry_alone(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    rename(root, f"{TOKEN}-6.1.0-fake+{TRIES}.conf", f"{TOKEN}-6.1.0-fake+1-2.conf")
    state = mark_good(root)
    assert names(root) == [f"{TOKEN}-6.1.0-fake.conf"]
    k = state.kernels["6.1.0-fake"]
    assert (k.known_good, k.entry) == (True, f"{ENTRIES}/{TOKEN}-6.1.0-fake.conf")
    assert default_line(root) == f"default {TOKEN}-6.1.0-fake[+.]*"
    assert cli("list", "--root", root, "--json").json()["kernels"][0]["boot"] == ""
    consistent(root)


def test_an_entry_blessed_by_systemd_bless_boot_is_known_good_and_removable(
    pkgs: dict[str, Path], tmp_path: Path
) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")
    rename(root, f"{TOKEN}-6.2.0-fake+{TRIES}.conf", f"{TOKEN}-6.2.0-fake.conf")
    state = consistent(root)
    assert state.kernels["6.2.0-fake"].known_good
    assert not state.kernels["6.1.0-fake"].known_good
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")  # a reinstall: on trial again
    assert names(root) == [f"{TOKEN}-6.1.0-fake+{TRIES}.conf", f"{TOKEN}-6.2.0-fake+{TRIES}.conf"]
    consistent(root)
    remove_kernel(root, "6.2.0-fake")
    assert names(root) == [f"{TOKEN}-6.1.0-fake+{TRIES}.conf"]
    consistent(root)


def test_a_bad_entry_is_reported_and_the_known_good_kernel_is_the_default(
    pkgs: dict[str, Path], tmp_path: Path
) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")
    assert default_line(root) == f"default {TOKEN}-*"  # 6.2 on trial, then 6.1
    rename(root, f"{TOKEN}-6.2.0-fake+{TRIES}.conf", f"{TOKEN}-6.2.0-fake+0-{TRIES}.conf")
    state = consistent(root)
    assert state.default == "6.1.0-fake"
    run = cli("list", "--root", root, "--json")
    doc = run.json()
    assert doc["default"] == "6.1.0-fake"
    assert {k["release"]: k["boot"] for k in doc["kernels"]} == {
        "6.2.0-fake": f"BAD: failed {TRIES} tries",
        "6.1.0-fake": "",
    }
    assert "BAD" in cli("list", "--root", root).out
    # Removing the bad kernel deletes its entry under the name systemd-boot gave it.
    remove_kernel(root, "6.2.0-fake")
    assert names(root) == [f"{TOKEN}-6.1.0-fake.conf"]
    assert default_line(root) == f"default {TOKEN}-6.1.0-fake[+.]*"
    consistent(root)


def test_rollback_and_reinstall_follow_a_renamed_entry(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")
    rename(root, f"{TOKEN}-6.2.0-fake+{TRIES}.conf", f"{TOKEN}-6.2.0-fake+2-1.conf")
    assert rollback(root).default == "6.1.0-fake"
    assert default_line(root) == f"default {TOKEN}-6.1.0-fake[+.]*"  # an older one on trial: itself only
    consistent(root)
    install_package(pkgs["6.2.0-fake"], root, layout="bls", initramfs="none")  # a reinstall: one entry, counted anew
    assert names(root) == [f"{TOKEN}-6.1.0-fake+{TRIES}.conf", f"{TOKEN}-6.2.0-fake+{TRIES}.conf"]
    consistent(root)


def test_an_older_release_on_trial_is_the_only_one_the_default_names(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.3.0-fake"], root, layout="bls", initramfs="none")
    install_package(pkgs["6.1.0-fake"], root, layout="bls", initramfs="none")
    # TOKEN-* would boot 6.3 first (systemd-boot puts the newest version first).
    assert default_line(root) == f"default {TOKEN}-6.1.0-fake[+.]*"


def test_a_uki_is_counted_and_found_under_any_counter(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = esp_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="uki", initramfs="none")
    assert names(root, UKIS) == [f"{TOKEN}-6.1.0-fake+{TRIES}.efi"]
    assert default_line(root) == f"default {TOKEN}-*"
    rename(root, f"{TOKEN}-6.1.0-fake+{TRIES}.efi", f"{TOKEN}-6.1.0-fake+1-2.efi", UKIS)
    consistent(root)
    state = mark_good(root)
    assert names(root, UKIS) == [f"{TOKEN}-6.1.0-fake.efi"]
    assert state.kernels["6.1.0-fake"].uki == f"{UKIS}/{TOKEN}-6.1.0-fake.efi"
    consistent(root)
    remove_kernel(root, "6.1.0-fake", keep_last=False)
    assert names(root, UKIS) == []


GRUBENV = "boot/grub/grubenv"
GRUB_TRIES = int(layouts_data()["grub"]["tries"])


def grub_env(root: Path) -> dict[str, str]:
    out = subprocess.run(["grub-editenv", root / GRUBENV, "list"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.mark.skipif(not shutil.which("grub-editenv"), reason="needs grub-editenv (grub-common)")
def test_grub_boots_a_kernel_on_trial_a_bounded_number_of_times(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="grub", initramfs="none")
    assert not (root / GRUBENV).exists()  # the only kernel: nothing to fall back to
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="grub", initramfs="none")
    assert grub_env(root) == {"distkernel_trial": "6.2.0-fake", "distkernel_tries": str(GRUB_TRIES)}
    cfg = (root / "boot/grub/grub.cfg").read_text()
    assert "set default='distkernel-6.1.0-fake'" in cfg and "save_env distkernel_tries" in cfg
    subprocess.run(["grub-script-check", root / "boot/grub/grub.cfg"], check=True)
    run = cli("list", "--root", root, "--json")
    assert {k["release"]: k["boot"] for k in run.json()["kernels"]}["6.2.0-fake"] == (
        f"on trial: {GRUB_TRIES} tries left, 0 done"
    )
    # What GRUB's save_env leaves after the last try: a commit in between keeps the count.
    subprocess.run(["grub-editenv", root / GRUBENV, "set", "distkernel_tries=0"], check=True)
    state = consistent(root)
    assert state.default == "6.1.0-fake"
    run = cli("list", "--root", root, "--json")
    assert {k["release"]: k["boot"] for k in run.json()["kernels"]}["6.2.0-fake"] == f"BAD: failed {GRUB_TRIES} tries"
    # The fallback boot's mark-good (of the known-good kernel it runs) keeps the failed count.
    mark_good(root, "6.1.0-fake")
    assert grub_env(root) == {"distkernel_trial": "6.2.0-fake", "distkernel_tries": "0"}
    run = cli("list", "--root", root, "--json")
    assert {k["release"]: k["boot"] for k in run.json()["kernels"]}["6.2.0-fake"] == f"BAD: failed {GRUB_TRIES} tries"
    # mark-good: the saved default, no counter left.
    mark_good(root, "6.2.0-fake")
    assert grub_env(root) == {}
    assert "save_env" not in (root / "boot/grub/grub.cfg").read_text()


@pytest.mark.skipif(not shutil.which("grub-editenv"), reason="needs grub-editenv (grub-common)")
def test_the_users_grubenv_variables_stay(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkgs["6.1.0-fake"], root, layout="grub", initramfs="none")
    (root / "boot/grub").mkdir(exist_ok=True)
    subprocess.run(["grub-editenv", root / GRUBENV, "set", "saved_entry=theirs"], check=True)
    mark_good(root)
    install_package(pkgs["6.2.0-fake"], root, layout="grub", initramfs="none")
    assert grub_env(root)["saved_entry"] == "theirs"
    mark_good(root)
    assert grub_env(root) == {"saved_entry": "theirs"}
