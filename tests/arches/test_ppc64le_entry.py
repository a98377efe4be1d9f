"""The plain layout on ppc64le: beside the kernel files, the boot entry petitboot reads
(data/layouts.toml's plain.arch.ppc64le: a syslinux.cfg naming every plain ppc64le
kernel, the default first and marked `default`), rewritten on every change and gone
with the last kernel. Small packages: the real ppc64le kernel's install is in
test_ppc64le.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.install import install_package, remove_kernel
from tests.target.install.helpers import consistent, fake_package, make_root

CMDLINE = "root=/dev/sda2 ro"
ENTRY = "boot/syslinux/syslinux.cfg"


def ppc64le_package(out: Path, release: str) -> Path:
    return fake_package(out, release, arch="ppc64le")


def entry_lines(root: Path) -> list[str]:
    return (root / ENTRY).read_text().splitlines()


def test_plain_on_ppc64le_writes_the_entry_petitboot_reads(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    pkg = ppc64le_package(tmp_path / "pkg", "6.1.0-ppc")
    inst = install_package(pkg, root, layout="plain", initramfs="builtin", cmdline=CMDLINE)
    assert (root / "boot/vmlinuz-6.1.0-ppc").is_file() and (root / "boot/initramfs-6.1.0-ppc.img").is_file()
    assert (root / "usr/lib/modules/6.1.0-ppc/modules.dep").is_file()  # depmod ran
    assert inst.entries == (root / ENTRY,)
    assert [line for line in entry_lines(root) if not line.startswith("#")] == [
        "default distkernel-6.1.0-ppc",
        "label distkernel-6.1.0-ppc",
        "\tlinux /boot/vmlinuz-6.1.0-ppc",
        "\tinitrd /boot/initramfs-6.1.0-ppc.img",
        f"\tappend {CMDLINE}",
    ]
    consistent(root)


def test_every_plain_kernel_is_listed_default_first_and_the_entry_goes_with_the_last(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    for n, release in enumerate(("6.1.0-a", "6.1.0-b")):
        install_package(ppc64le_package(tmp_path / f"p{n}", release), root, layout="plain", initramfs="none")
    labels = [line for line in entry_lines(root) if line.startswith(("default", "label"))]
    assert labels == ["default distkernel-6.1.0-b", "label distkernel-6.1.0-b", "label distkernel-6.1.0-a"]
    assert not any(line.strip().startswith(("initrd", "append")) for line in entry_lines(root))  # none to name
    remove_kernel(root, "6.1.0-b")
    assert [line for line in entry_lines(root) if line.startswith("label")] == ["label distkernel-6.1.0-a"]
    remove_kernel(root, "6.1.0-a")
    assert not (root / ENTRY).exists()
    consistent(root)


def test_a_syslinux_cfg_distkernel_did_not_write_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    (root / "boot/syslinux").mkdir()
    (root / ENTRY).write_text("label mine\n\tlinux /boot/mine\n")
    with pytest.raises(UserError, match="was not created by distkernel"):
        install_package(ppc64le_package(tmp_path / "pkg", "6.1.0-ppc"), root, layout="plain", initramfs="none")
    assert (root / ENTRY).read_text() == "label mine\n\tlinux /boot/mine\n"
    assert not (root / "boot/vmlinuz-6.1.0-ppc").exists()


def test_plain_on_x86_64_writes_no_entry(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    inst = install_package(fake_package(tmp_path / "pkg"), root, layout="plain", initramfs="none")
    assert inst.entries == ()
    assert not (root / "boot/syslinux").exists()
