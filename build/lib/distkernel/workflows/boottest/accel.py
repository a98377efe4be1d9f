"""KVM only when it really runs Linux guests, TCG otherwise, and why.

/dev/kvm existing is not enough: a paravirtual KVM (kvm-pvm) opens fine, runs SeaBIOS,
then hangs every Linux kernel silently. The static checks below decide in microseconds;
a host that passes them is still watched on its first KVM boot (no kernel line within
a short deadline means KVM hangs guests), and that verdict is cached for this host boot.
"""

from __future__ import annotations

import json
import os
import platform
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.core.errors import ToolError
from distkernel.workflows.boottest.profile import QemuProfile, kvm_broken_modules

ACCELS = ("auto", "kvm", "tcg")
KVM_DEVICE = Path("/dev/kvm")
SYS_MODULES = Path("/sys/module")
CPUINFO = Path("/proc/cpuinfo")
# Under KVM the kernel's first line arrives within a second of a direct boot, a few
# seconds through GRUB's menu countdown; no line by then is a hang.
KVM_FIRST_LINE_S = 10.0


@dataclass(frozen=True)
class Accel:
    name: str  # kvm | tcg
    reason: str  # why this one (shown in the result)


def _host_boot_id() -> str:
    with suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return "unknown"


def _verdict_file() -> Path:
    return cache.cache_dir("boottest") / "kvm-verdict.json"


def cached_verdict() -> str | None:
    """Why KVM hung guests earlier in this host boot, or None."""
    with suppress(OSError, ValueError, KeyError):
        doc = json.loads(_verdict_file().read_text())
        if doc["boot_id"] == _host_boot_id():
            return str(doc["problem"])
    return None


def remember_kvm_hang(problem: str) -> None:
    cache.atomic_write_text(_verdict_file(), json.dumps({"boot_id": _host_boot_id(), "problem": problem}))


def kvm_problem(prof: QemuProfile) -> str | None:
    """Why KVM cannot run this guest here, or None when it should."""
    if platform.machine() not in get_arch(prof.arch).machines:
        return f"host is {platform.machine()}, guest is {prof.arch}"
    if not KVM_DEVICE.exists():
        return f"no {KVM_DEVICE}"
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return f"{KVM_DEVICE} is not writable by this user (add it to the kvm group)"
    broken = [m for m in kvm_broken_modules() if (SYS_MODULES / m).exists()]
    if broken:
        return f"{KVM_DEVICE} is provided by {broken[0]}, which hangs Linux guests"
    if prof.kvm_cpu_flags:
        flags: set[str] = set()
        with suppress(OSError):
            for line in CPUINFO.read_text().splitlines():
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
        if not flags & set(prof.kvm_cpu_flags):
            return f"no {'/'.join(prof.kvm_cpu_flags)} in {CPUINFO} (no hardware virtualization)"
    return cached_verdict()


def choose(prof: QemuProfile, wanted: str = "auto") -> Accel:
    if wanted == "tcg":
        return Accel("tcg", "asked for")
    if wanted == "kvm":  # asked for: a host that cannot is an error, never a quiet TCG boot
        problem = kvm_problem(prof)
        if problem:
            raise ToolError(f"--accel kvm: KVM cannot run this guest here: {problem}; use --accel auto or tcg")
        return Accel("kvm", "asked for")
    problem = kvm_problem(prof)
    if problem:
        return Accel("tcg", f"KVM unusable: {problem}")
    return Accel("kvm", "KVM works on this host")
