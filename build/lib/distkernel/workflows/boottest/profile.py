"""qemu per architecture (data/qemu.toml) and the command lines built from it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.core.errors import UserError


@dataclass(frozen=True)
class Uefi:
    code: Path
    vars: Path
    firmware_package: str
    disk_args: tuple[str, ...]
    boot_path: str  # the removable-media path the firmware starts, e.g. EFI/BOOT/BOOTX64.EFI
    grub_target: str
    grub_modules: Path
    grub_package: str
    systemd_boot: Path


@dataclass(frozen=True)
class QemuProfile:
    arch: str
    binary: str
    console: str
    args: tuple[str, ...]
    panic_args: tuple[str, ...]
    cmdline: tuple[str, ...]
    kvm_cpu_flags: tuple[str, ...]
    pvh: bool
    uefi: Uefi | None

    def kernel_cmdline(self, extra: str = "") -> str:
        return " ".join([f"console={self.console}", *self.cmdline, *([extra] if extra else [])])

    def base_argv(self, accel: str) -> list[str]:
        return [self.binary, "-accel", accel, *self.args, *self.panic_args, "-serial", "stdio"]

    def direct_argv(self, accel: str, kernel: Path, initrd: Path | None, cmdline: str) -> list[str]:
        argv = [*self.base_argv(accel), "-kernel", str(kernel), "-append", cmdline]
        return [*argv, "-initrd", str(initrd)] if initrd else argv

    def uefi_argv(self, accel: str, disk: Path, vars_copy: Path) -> list[str]:
        assert self.uefi is not None
        return [
            *self.base_argv(accel),
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={self.uefi.code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={vars_copy}",
            *(a.format(disk=disk) for a in self.uefi.disk_args),
        ]


@cache
def _raw() -> dict[str, Any]:
    return tomllib.loads(resources.files("distkernel.workflows.data").joinpath("qemu.toml").read_text())


def kvm_broken_modules() -> tuple[str, ...]:
    return tuple(_raw()["kvm_broken_modules"])


def profile(arch: str) -> QemuProfile:
    raw = _raw()
    entry = raw.get(arch)
    if not isinstance(entry, dict):
        known = ", ".join(k for k, v in raw.items() if isinstance(v, dict))
        raise UserError(f"no qemu profile for arch {arch!r} in data/qemu.toml; known: {known}")
    u = entry.get("uefi")
    uefi = (
        Uefi(
            Path(u["code"]),
            Path(u["vars"]),
            u["firmware_package"],
            tuple(u["disk_args"]),
            u["boot_path"],
            u["grub_target"],
            Path(u["grub_modules"]),
            u["grub_package"],
            Path(u["systemd_boot"]),
        )
        if u
        else None
    )
    return QemuProfile(
        arch=arch,
        binary=entry["binary"],
        console=entry["console"],
        args=tuple(entry["args"]),
        panic_args=tuple(entry["panic_args"]),
        cmdline=tuple(entry["cmdline"]),
        kvm_cpu_flags=tuple(entry["kvm_cpu_flags"]),
        pvh=bool(entry["pvh"]),
        uefi=uefi,
    )
