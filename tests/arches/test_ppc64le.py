"""ppc64le, cross-built on this host: the embedded qemu-minimal-ppc64le recipe's package boots
under qemu `pseries` (SLOF), a kernel made to panic is a panic, it installs into a
ppc64le root (plain layout, with the boot entry petitboot reads) where an external module
cross-builds against its headers and loads, and a second build is byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.arches.boots import TIMEOUT, arch_root, assert_panics, assert_reproducible, boot
from tests.arches.conftest import RECIPES
from tests.conftest import DATA, Built, cli

# Extended (`make test-extended`): a third cross-built kernel, and TCG boots of POWER are
# the slowest; CI's `make test` keeps arm64 as the cross-built arch.
pytestmark = [pytest.mark.kernel, pytest.mark.extended]


def test_package_records_ppc64le_and_its_cross_toolchain(ppc64le_package: Built) -> None:
    meta = ppc64le_package.metadata
    assert meta["arch"] == "ppc64le"
    assert meta["toolchain"]["gcc"].startswith("powerpc64le-linux-gnu-gcc")
    assert "test_module" in meta["modules"]


def test_direct_boot_passes(ppc64le_package: Built, tmp_path: Path) -> None:
    code, doc = boot(ppc64le_package.package, tmp_path)
    assert code == 0, doc
    assert (doc["arch"], doc["firmware"], doc["layout"], doc["boot"]) == ("ppc64le", "bios", "plain", "vmlinux")
    assert doc["modules"] == ["test_module"]


def test_panic_is_classified(ppc64le_package: Built, tmp_path: Path) -> None:
    assert_panics(ppc64le_package, tmp_path, "ppc64le")


def test_installed_root_boots_with_a_cross_built_module(ppc64le_package: Built, tmp_path: Path) -> None:
    root = arch_root(tmp_path / "root", "ppc64le")
    run = cli("install", ppc64le_package.package, "--root", root, "--layout", "plain", "--json")
    assert run.code == 0, run.err
    inst = run.json()
    assert "test_module" in (Path(inst["modules_dir"]) / "modules.dep").read_text()  # depmod ran
    assert inst["initramfs_backend"] == "builtin" and Path(inst["initrd"]).stat().st_size > 0
    release = ppc64le_package.metadata["kernel_release"]
    assert inst["entries"] == [str(root / "boot" / "syslinux" / "syslinux.cfg")]
    entry = Path(inst["entries"][0]).read_text()
    assert f"default distkernel-{release}\n" in entry and f"\tlinux /boot/vmlinuz-{release}\n" in entry
    run = cli("modules", "add", DATA / "extmod" / "dkms", "--root", root)
    assert run.code == 0, run.err
    built = sorted(root.rglob("dk_dkms.ko*"))
    assert built and built[0].read_bytes()[18:20] == (21).to_bytes(2, "little")  # the ELF machine
    run = cli("test", "--root", root, "--module", "dk_dkms", "--json", "--timeout", TIMEOUT)
    assert run.code == 0, run.err
    assert (run.json()["arch"], run.json()["layout"]) == ("ppc64le", "plain")


def test_two_builds_are_byte_identical(ppc64le_package: Built, tmp_path: Path) -> None:
    assert_reproducible(ppc64le_package, RECIPES / "qemu-minimal-ppc64le.toml", tmp_path)
