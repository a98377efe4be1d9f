"""The default recipe's real package: into four roots (one per layout), and booted in
qemu (TCG) from the plain layout's files: the builtin initramfs loads virtio_blk and
ext4 (modules), mounts root=/dev/vda and switches to the root's init, which prints a
marker. Minimal boots (direct kernel, UKI and our grub.cfg under OVMF); the full
boot-test harness is another stage."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.target.install import install_package
from tests.conftest import Built
from tests.target.install.helpers import consistent, make_root

pytestmark = pytest.mark.kernel
MARKER = "DISTKERNEL-ROOT-INIT-RAN"
CMDLINE = "console=ttyS0 root=/dev/vda rw panic=-1 rd.timeout=60"
ROOT_INIT = f"""#!/bin/busybox sh
/bin/busybox echo {MARKER} $(/bin/busybox uname -r)
/bin/busybox reboot -f
"""


@pytest.mark.parametrize("layout", ["plain", "grub", "bls", "uki"])
def test_default_package_into_each_layout(default_package: Built, tmp_path: Path, layout: str) -> None:
    root = make_root(tmp_path / "root")
    inst = install_package(
        default_package.package, root, layout=layout, initramfs="builtin", cmdline="console=ttyS0", with_headers=True
    )
    release = default_package.metadata["kernel_release"]
    assert inst.release == release and inst.default
    moddir = root / "usr/lib/modules" / release
    dep = (moddir / "modules.dep").read_text()
    assert "test_module.ko" in dep and "virtio_blk.ko" in dep
    assert (moddir / "build/Makefile").is_file() and (moddir / "build/Module.symvers").is_file()
    assert inst.image.is_file()
    consistent(root)


def root_disk(path: Path) -> Path:
    """An ext4 image holding busybox and an /sbin/init that prints the marker."""
    tree = path.with_suffix(".d")
    (tree / "bin").mkdir(parents=True)
    (tree / "sbin").mkdir()
    for d in ("dev", "proc", "sys"):
        (tree / d).mkdir()
    shutil.copy("/bin/busybox", tree / "bin/busybox")
    (tree / "sbin/init").write_text(ROOT_INIT)
    (tree / "sbin/init").chmod(0o755)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, path, "32M"], check=True)
    return path


def boot(tmp_path: Path, release: str, *args: str) -> None:
    """Boot with the root disk as /dev/vda; the root's init must print the marker."""
    disk = root_disk(tmp_path / "rootfs.img")
    argv = ["qemu-system-x86_64", "-machine", "pc", "-m", "256", "-nodefaults", "-no-user-config"]
    argv += ["-display", "none", "-no-reboot", "-serial", "stdio", "-accel", "tcg"]
    argv += ["-drive", f"file={disk},format=raw,if=virtio", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=300, check=False)
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert f"{MARKER} {release}" in lines, proc.stdout[-3000:]
    assert not any("Kernel panic" in line for line in lines), proc.stdout[-3000:]


def test_plain_layout_boots_with_the_builtin_initramfs(default_package: Built, tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    inst = install_package(default_package.package, root, layout="plain", initramfs="builtin")
    assert inst.initrd is not None
    kernel = ["-kernel", str(root / "boot/vmlinuz"), "-initrd", str(inst.initrd)]  # through the vmlinuz link
    boot(tmp_path, inst.release, *kernel, "-append", CMDLINE)


def ovmf(tmp_path: Path, esp: Path) -> list[str]:
    """UEFI firmware and an ESP folder (as a virtual FAT disk) holding EFI/BOOT/BOOTX64.EFI."""
    vars_copy = tmp_path / "vars.fd"
    shutil.copy("/usr/share/OVMF/OVMF_VARS.fd", vars_copy)
    return [
        "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
        "-drive", f"if=pflash,format=raw,file={vars_copy}",
        "-drive", f"file=fat:rw:{esp},format=raw,if=virtio",
    ]  # fmt: skip


def test_uki_boots_from_uefi_firmware(default_package: Built, tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    inst = install_package(default_package.package, root, layout="uki", initramfs="builtin", cmdline=CMDLINE)
    assert inst.uki is not None
    esp = tmp_path / "esp"
    (esp / "EFI/BOOT").mkdir(parents=True)
    shutil.copy(inst.uki, esp / "EFI/BOOT/BOOTX64.EFI")
    boot(tmp_path, inst.release, *ovmf(tmp_path, esp))


def test_our_grub_cfg_boots_with_real_grub(default_package: Built, tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    inst = install_package(default_package.package, root, layout="grub", initramfs="builtin", cmdline=CMDLINE)
    esp = tmp_path / "esp"
    shutil.copytree(root / "boot", esp / "boot")  # /boot is not its own filesystem: paths start /boot/
    cfg = tmp_path / "grub.cfg"
    cfg.write_text((root / "boot/grub/grub.cfg").read_text().replace("set timeout=3", "set timeout=0"))
    image = esp / "EFI/BOOT/BOOTX64.EFI"
    image.parent.mkdir(parents=True)
    subprocess.run(["grub-mkstandalone", "-O", "x86_64-efi", "-o", image, f"boot/grub/grub.cfg={cfg}"], check=True)
    boot(tmp_path, inst.release, *ovmf(tmp_path, esp))
