"""What a boot test returns: every attempt, and the outcome that decides the exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distkernel.workflows.boottest.console import PASS, QEMU


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: str  # console.PASS, PANIC, OOPS, INIT, TIMEOUT, NO_MARKER or QEMU
    detail: str
    accel: str  # kvm | tcg
    seconds: float  # wall time of the qemu run
    marker_s: float | None  # time to the marker
    console_log: Path | None  # kept on failure (and when asked to keep logs)
    qemu_status: int | None

    @property
    def passed(self) -> bool:
        return self.outcome == PASS


@dataclass(frozen=True)
class BootResult:
    package: Path
    name: str
    release: str
    arch: str
    firmware: str  # bios | uefi
    layout: str  # plain | grub | bls | uki
    boot: str  # how the kernel was started: pvh, bzImage, OVMF + systemd-boot ...
    accel: str
    accel_reason: str
    modules: tuple[str, ...]  # what the init loaded
    attempts: tuple[Attempt, ...]
    prepare_s: float  # install, initramfs, disk image
    prepare_cached: bool = False  # kept from an earlier test of the same bytes

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def passed(self) -> bool:
        return self.final.passed

    @property
    def exit_code(self) -> int:
        """0 pass, 1 the kernel failed, 3 the harness could not run qemu."""
        if self.passed:
            return 0
        return 3 if self.final.outcome == QEMU else 1

    @property
    def case(self) -> str:
        return f"{self.name} {self.release} {self.arch} {self.firmware}/{self.layout}"

    def to_json(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "name": self.name,
            "release": self.release,
            "arch": self.arch,
            "firmware": self.firmware,
            "layout": self.layout,
            "boot": self.boot,
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "modules": list(self.modules),
            "outcome": self.final.outcome,
            "detail": self.final.detail,
            "passed": self.passed,
            "marker_s": self.final.marker_s,
            "prepare_s": round(self.prepare_s, 3),
            "prepare_cached": self.prepare_cached,
            "console_log": str(self.final.console_log) if self.final.console_log else None,
            "attempts": [
                {
                    "number": a.number,
                    "outcome": a.outcome,
                    "detail": a.detail,
                    "accel": a.accel,
                    "seconds": round(a.seconds, 3),
                    "marker_s": round(a.marker_s, 3) if a.marker_s is not None else None,
                    "qemu_status": a.qemu_status,
                    "console_log": str(a.console_log) if a.console_log else None,
                }
                for a in self.attempts
            ],
            "exit_code": self.exit_code,
        }
