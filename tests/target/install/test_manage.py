"""list, remove, rollback, mark-good, retention (--keep), refresh_initramfs: through the
CLI where a user would, checking the root stays consistent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distkernel.target.install import install_package, load_state, refresh_initramfs
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import consistent, fake_package, make_root

RELEASES = [f"6.1.{n}-dk" for n in range(1, 6)]


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    return {r: fake_package(out, r) for r in RELEASES}


def listing(root: Path) -> dict:  # type: ignore[type-arg]
    run = cli("list", "--root", root, "--json")
    assert run.code == 0, run.err
    return run.json()


def test_list_remove_rollback_mark_good(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    for r in RELEASES[:3]:
        run = cli("install", pkgs[r], "--root", root, "--layout", "plain", "--initramfs", "none", "--json")
        assert run.code == 0, run.err
        assert run.json()["default"] is True
    doc = listing(root)
    assert [k["release"] for k in doc["kernels"]] == RELEASES[2::-1] and doc["default"] == RELEASES[2]
    assert os.readlink(root / "boot/vmlinuz") == f"vmlinuz-{RELEASES[2]}"
    assert os.readlink(root / "boot/vmlinuz.old") == f"vmlinuz-{RELEASES[1]}"

    assert cli("rollback", "--root", root).code == 0
    assert listing(root)["default"] == RELEASES[1]
    assert os.readlink(root / "boot/vmlinuz") == f"vmlinuz-{RELEASES[1]}"
    assert cli("mark-good", "--root", root).code == 0
    assert [k["known_good"] for k in listing(root)["kernels"]] == [False, True, False]

    assert cli("remove", RELEASES[1], "--root", root).code == 0  # the default: the next one takes over
    doc = listing(root)
    assert [k["release"] for k in doc["kernels"]] == [RELEASES[2], RELEASES[0]]
    assert doc["default"] == RELEASES[2]
    assert not (root / f"usr/lib/modules/{RELEASES[1]}").exists()
    assert not (root / f"boot/vmlinuz-{RELEASES[1]}").exists()
    consistent(root)
    assert_user_facing_error(cli("remove", "9.9.9", "--root", root), 2, "is not installed")


def test_keep_prunes_but_not_known_good_nor_foreign(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    foreign = root / "usr/lib/modules/6.0.0-debian"  # a distribution's kernel, not ours
    foreign.mkdir(parents=True)
    (root / "boot/vmlinuz-6.0.0-debian").write_text("theirs")
    install_package(pkgs[RELEASES[0]], root, layout="plain", initramfs="none")
    assert cli("mark-good", RELEASES[0], "--root", root).code == 0
    for r in RELEASES[1:]:
        inst = install_package(pkgs[r], root, layout="plain", initramfs="none", keep=2)
    state = consistent(root)
    # newest two kept, plus the last known-good one; the others pruned
    assert [k.release for k in state.ordered()] == [RELEASES[4], RELEASES[3], RELEASES[0]]
    assert inst.pruned == (RELEASES[2],)
    assert not (root / f"usr/lib/modules/{RELEASES[1]}").exists()
    assert foreign.is_dir() and (root / "boot/vmlinuz-6.0.0-debian").read_text() == "theirs"
    assert_user_facing_error(cli("remove", "6.0.0-debian", "--root", root), 2, "not installed by distkernel")


def test_installing_over_a_foreign_kernel_is_refused(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / f"usr/lib/modules/{RELEASES[0]}").mkdir(parents=True)
    run = cli("install", pkgs[RELEASES[0]], "--root", root, "--initramfs", "none")
    assert_user_facing_error(run, 2, "not by distkernel")


def test_reinstall_in_another_layout_moves_the_files(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkgs[RELEASES[0]], root, layout="bls", initramfs="none")
    install_package(pkgs[RELEASES[0]], root, layout="plain", initramfs="none")
    state = consistent(root)
    assert state.kernels[RELEASES[0]].layout == "plain"
    assert not list((root / "boot/loader/entries").iterdir())


@pytest.mark.parametrize("layout", ["plain", "uki"])
def test_refresh_initramfs(pkgs: dict[str, Path], tmp_path: Path, layout: str) -> None:
    root = make_root(tmp_path / "r")
    before = install_package(pkgs[RELEASES[0]], root, layout=layout, initramfs="builtin")
    old = before.image.read_bytes() if layout == "uki" else before.initrd.read_bytes()  # type: ignore[union-attr]
    after = refresh_initramfs(root, RELEASES[0])
    assert after.image == before.image and after.initrd == before.initrd
    state = consistent(root)
    assert state.kernels[RELEASES[0]].initramfs == "builtin"
    assert (after.image.read_bytes() if layout == "uki" else after.initrd.read_bytes()) == old  # type: ignore[union-attr]
    assert load_state(root).default == RELEASES[0]


def test_recover_reports_nothing_on_a_clean_root(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkgs[RELEASES[0]], root, layout="plain", initramfs="none")
    run = cli("recover", "--root", root, "--json")
    assert run.code == 0 and run.json() == {"recovered": None, "problems": []}
    (root / f"boot/vmlinuz-{RELEASES[0]}").write_text("tampered")
    run = cli("recover", "--root", root)
    assert run.code == 1 and "differs from what was installed" in run.err


def test_a_failed_required_module_keeps_the_previous_default(pkgs: dict[str, Path], tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkgs[RELEASES[0]], root, layout="plain", initramfs="none")
    src = tmp_path / "broken"
    src.mkdir()
    (src / "Kbuild").write_text("obj-m := broken.o\n")
    (src / "broken.c").write_text("this is not C;\n")
    cli("modules", "add", src, "--root", root, "--required")  # fails for the installed kernel: reported there
    inst = install_package(pkgs[RELEASES[1]], root, layout="plain", initramfs="none")
    assert not inst.default and [(m.name, m.ok, m.required) for m in inst.external_modules] == [("broken", False, True)]
    doc = listing(root)
    assert doc["default"] == RELEASES[0]
    assert doc["kernels"][0]["release"] == RELEASES[1] and doc["kernels"][0]["bootable"] is False
    assert "FAILED: broken" in cli("list", "--root", root).out
    assert os.readlink(root / "boot/vmlinuz") == f"vmlinuz-{RELEASES[0]}"
    consistent(root)


def test_a_damaged_state_file_is_one_clear_line(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    state = root / "var/lib/distkernel/state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    for text in ("{bad", "[]"):
        state.write_text(text)
        assert_user_facing_error(cli("list", "--root", root), 2, "state.json: unreadable", "move it away")
