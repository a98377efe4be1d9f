"""The serial console: complete lines out of arbitrary chunks, and what a boot's lines
say about it. Success is only ever the run's own marker; everything else is a failure
of some class, with the line that shows it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from distkernel.workflows.boottest.testinit import CHECK_FAILED, MARKER

PASS = "pass"
PANIC = "panic"
OOPS = "oops"
INIT = "init failure"
TIMEOUT = "timeout"
NO_MARKER = "no marker"  # the guest stopped (power-off, reset) without printing it
QEMU = "qemu error"
FLAKY = (PANIC, TIMEOUT)  # worth a retry: a boot test that panics or stalls once may pass the next time

PANIC_RE = re.compile(r"Kernel panic - not syncing: .*")
OOPS_RE = re.compile(
    r"(?:kernel BUG at .*|BUG: .*|Oops: .*|WARNING: CPU: .*|general protection fault.*|Unable to handle kernel .*)"
)
KERNEL_START_RE = re.compile(r"Linux version \d")
INITRAMFS_RE = re.compile(r"Initramfs unpacking failed: .*")
# Where a boot is, from its console lines, for progress: each phase begins at the first
# line matching its pattern; a boot starts in "firmware" and ends at "marker".
FIRMWARE = "firmware"
PHASES = (
    ("loader", re.compile(r"BdsDxe: (?:loading|starting) Boot|Welcome to GRUB")),
    ("kernel", re.compile(r"Linux version \d|EFI stub: ")),
    ("init", re.compile(r"Run \S+ as init process")),
)
MARKER_PHASE = "marker"
# Kernel lines may carry a printk timestamp; firmware and boot loaders draw with ANSI
# escapes. Neither belongs in a detail.
TIMESTAMP_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")
ANSI_RE = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")


class LineSplitter:
    """Feed raw serial bytes, get complete lines (no CR/LF, ANSI noise kept)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return [c.decode("utf-8", "replace").replace("\r", "") for c in complete]

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", "replace").replace("\r", "")] if rest else []


def clean(line: str) -> str:
    return TIMESTAMP_RE.sub("", ANSI_RE.sub("", line)).strip()


def marker_line(token: str) -> str:
    return f"{MARKER} {token}"


def is_marker(line: str, token: str) -> bool:
    return line.strip() == marker_line(token)


def is_panic(line: str) -> bool:
    return PANIC_RE.search(line) is not None


def phase_after(current: str, line: str) -> str:
    """The boot phase once LINE is seen (phases only move forward)."""
    order = [FIRMWARE, *(name for name, _ in PHASES), MARKER_PHASE]
    for name, pattern in PHASES:
        if order.index(name) > order.index(current) and pattern.search(line):
            current = name
    return current


@dataclass(frozen=True)
class Verdict:
    outcome: str
    detail: str  # the panic line, the failed check, the first oops line ...


def classify(lines: list[str], token: str, *, timed_out: bool, qemu_status: int | None, qemu_err: str) -> Verdict:
    """What happened, from the console lines up to the marker (what follows the
    marker is the power-off, not the test) and how qemu ended."""
    seen: list[str] = []
    passed = False
    for line in lines:
        if is_marker(line, token):
            passed = True
            break
        seen.append(clean(line))
    for line in seen:  # the root's initramfs did not unpack: what follows is its consequence
        if m := INITRAMFS_RE.search(line):
            return Verdict(INIT, m.group(0))
    for line in seen:
        if m := PANIC_RE.search(line):
            return Verdict(PANIC, m.group(0))
    for line in seen:
        if m := OOPS_RE.search(line):
            return Verdict(OOPS, m.group(0))
    for line in seen:
        if line.startswith(CHECK_FAILED):
            return Verdict(INIT, line[len(CHECK_FAILED) :].strip())
    if passed:
        return Verdict(PASS, "")
    if timed_out:
        last = next((x for x in reversed(seen) if x.strip()), "")
        return Verdict(TIMEOUT, f"last console line: {last}" if last else "no console output")
    started = any(KERNEL_START_RE.search(x) for x in seen)
    if qemu_status not in (0, None) or (qemu_err and not started):
        first = next((x for x in qemu_err.splitlines() if x.strip()), f"exit status {qemu_status}")
        return Verdict(QEMU, first)
    if not started:
        return Verdict(NO_MARKER, "the kernel never started (the firmware or boot loader stopped first)")
    return Verdict(NO_MARKER, "the guest stopped without printing the marker")
