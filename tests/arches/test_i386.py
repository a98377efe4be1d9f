"""i386, cross-built on this host: the embedded qemu-minimal-i386 recipe's package boots
under qemu `pc` through SeaBIOS, a kernel made to panic is a panic, it installs into a
i386 root (plain layout) where an external module cross-builds against its headers and
loads, and a second build is byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.arches.boots import TIMEOUT, arch_root, assert_panics, assert_reproducible, boot
from tests.arches.conftest import RECIPES
from tests.conftest import DATA, Built, cli

pytestmark = [pytest.mark.kernel, pytest.mark.extended]


def test_package_records_i386_and_its_cross_toolchain(i386_package: Built) -> None:
    meta = i386_package.metadata
    assert meta["arch"] == "i386"
    assert meta["toolchain"]["gcc"].startswith("i686-linux-gnu-gcc")
    assert "test_module" in meta["modules"]


def test_direct_boot_passes(i386_package: Built, tmp_path: Path) -> None:
    code, doc = boot(i386_package.package, tmp_path)
    assert code == 0, doc
    assert (doc["arch"], doc["firmware"], doc["layout"], doc["boot"]) == ("i386", "bios", "plain", "bzImage")
    assert doc["modules"] == ["test_module"]


def test_panic_is_classified(i386_package: Built, tmp_path: Path) -> None:
    assert_panics(i386_package, tmp_path, "i386")


def test_installed_root_boots_with_a_cross_built_module(i386_package: Built, tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "i386")
    run = cli("install", i386_package.package, "--root", root, "--layout", "plain", "--json")
    assert run.code == 0, run.err
    assert "test_module" in (Path(run.json()["modules_dir"]) / "modules.dep").read_text()  # depmod ran
    run = cli("modules", "add", DATA / "extmod" / "dkms", "--root", root)
    assert run.code == 0, run.err
    built = sorted(root.rglob("dk_dkms.ko*"))
    assert built and built[0].read_bytes()[18:20] == (3).to_bytes(2, "little")  # the ELF machine
    run = cli("test", "--root", root, "--module", "dk_dkms", "--json", "--timeout", TIMEOUT)
    assert run.code == 0, run.err
    assert (run.json()["arch"], run.json()["layout"]) == ("i386", "plain")


def test_two_builds_are_byte_identical(i386_package: Built, tmp_path: Path) -> None:
    assert_reproducible(i386_package, RECIPES / "qemu-minimal-i386.toml", tmp_path)
