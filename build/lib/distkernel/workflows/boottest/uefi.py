"""The ESP a UEFI boot test starts from: the installed root's boot files as the layout
placed them, plus the real boot loader that reads that layout as the firmware's
default boot path (systemd-boot for bls and uki, a GRUB EFI image for grub)."""

from __future__ import annotations

import shutil
from pathlib import Path

from distkernel.core.errors import ToolError, UserError
from distkernel.core.tools import install_command, run
from distkernel.workflows.boottest.disk import esp_disk
from distkernel.workflows.boottest.profile import Uefi

# What GRUB needs to read a GPT/FAT disk, run our grub.cfg and start Linux on UEFI.
GRUB_MODULES = (
    "part_gpt",
    "fat",
    "normal",
    "configfile",
    "search",
    "search_fs_file",
    "linux",
    "echo",
    "test",
    "halt",
)
# Which boot loader reads each layout under UEFI.
LOADERS = {"bls": "systemd-boot", "uki": "systemd-boot", "grub": "GRUB"}


def _copy_tree(src: Path, dst: Path) -> None:
    """Files only: FAT has no symlinks (the plain layout's vmlinuz links)."""
    for f in sorted(src.rglob("*")):
        if f.is_file() and not f.is_symlink():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)


def need_file(path: Path, package: str) -> None:
    if not path.is_file():
        raise ToolError(f"{path} not found; install it: {install_command([package])}")


def grub_image(uefi: Uefi, out: Path, *, log: Path) -> None:
    """A GRUB EFI binary whose prefix is /boot/grub on the disk it was loaded from."""
    need_file(uefi.grub_modules / "linux.mod", uefi.grub_package)
    run(
        [
            "grub-mkimage",
            "-O",
            uefi.grub_target,
            "-d",
            uefi.grub_modules,
            "-p",
            "/boot/grub",
            "-o",
            out,
            *GRUB_MODULES,
        ],
        log=log,
        what="grub-mkimage",
    )


def esp_tree(layout: str, root: Path, esp: str, boot: str, uefi: Uefi, tree: Path, *, log: Path) -> None:
    """Fill `tree` with what the ESP holds for `layout`, installed under `root`."""
    loader = tree / uefi.boot_path
    loader.parent.mkdir(parents=True, exist_ok=True)
    if layout in ("bls", "uki"):
        need_file(uefi.systemd_boot, "systemd-boot-efi")
        _copy_tree(root / esp, tree)
        shutil.copyfile(uefi.systemd_boot, loader)
    elif layout == "grub":
        # No separate /boot in the installed root: grub.cfg names /boot/..., so the
        # ESP carries the root's boot folder under the same name.
        _copy_tree(root / boot, tree / "boot")
        grub_image(uefi, loader, log=log)
    else:
        raise UserError(f"--layout {layout}: no boot loader for it under UEFI; use one of: {', '.join(LOADERS)}")


def build_disk(layout: str, root: Path, esp: str, boot: str, uefi: Uefi, work: Path) -> Path:
    tree = work / "esp"
    esp_tree(layout, root, esp, boot, uefi, tree, log=work / "disk.log")
    return esp_disk(tree, work / "disk.img", log=work / "disk.log")
