"""Run the real system's disk under qemu and OVMF (no -kernel, no harness initramfs),
reading the serial console line by line into a log, with deadlines per expected line.

The guest's network is qemu's user-mode network restricted to nothing (restrict=on):
the only address it can reach is the one forwarded to a server on this machine's
127.0.0.1 (the binhost), through a small bridge process qemu starts per connection."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from distkernel.core.errors import ToolError
from distkernel.workflows.boottest.console import LineSplitter, clean, is_panic
from distkernel.workflows.boottest.profile import profile

BINHOST_ADDR = "10.0.2.100"  # in the user-mode network, outside its DHCP range
BINHOST_URL = f"http://{BINHOST_ADDR}/"
# Not the boot test's i440fx ("pc"): on it, OVMF under TCG stopped in the firmware, before
# any output, after the guest's own reset (three grub walks of three, at the reboot after
# the first in-guest upgrade; a reset from qemu's monitor then booted). On q35 (a PCIe
# chipset, as current machines have) the same walks reboot through every step.
MACHINE = "q35"


def qemu_argv(disk: Path, vars_copy: Path, *, memory_mib: int, binhost_port: int | None) -> list[str]:
    """The boot test's UEFI line for x86_64 (TCG), but on MACHINE, and a guest that reboots
    stays up and has memory for a compiler; a virtio NIC only when there is a binhost. A
    panic does not end qemu either (no pvpanic exit): the kernel reboots (panic=N) and
    the firmware starts the boot loader again, as a machine does, so a kernel that
    panics can be tried again and fall back."""
    prof = profile("x86_64")
    argv = prof.uefi_argv("tcg", disk, vars_copy)
    argv = [a for a in argv if a != "-no-reboot"]
    n = len(prof.panic_args)
    at = next(i for i in range(len(argv)) if argv[i : i + n] == list(prof.panic_args))
    del argv[at : at + n]
    argv[argv.index("-m") + 1] = str(memory_mib)
    argv[argv.index("-machine") + 1] = MACHINE
    if binhost_port is not None:
        bridge = f"{sys.executable} -m distkernel.workflows.realsys.bridge 127.0.0.1 {binhost_port}"
        argv += [
            "-netdev", f"user,id=net0,restrict=on,guestfwd=tcp:{BINHOST_ADDR}:80-cmd:{bridge}",
            "-device", "virtio-net-pci,netdev=net0",
        ]  # fmt: skip
    return argv


@dataclass
class Milestone:
    seconds: float  # since qemu started
    line: str


@dataclass
class Guest:
    """A running guest; `expect` waits for a console line, `milestones` keeps what matched."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    lines: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)
    milestones: list[Milestone] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, disk: Path, work: Path, *, memory_mib: int = 1024, binhost_port: int | None = None) -> Guest:
        prof = profile("x86_64")
        assert prof.uefi is not None
        vars_copy = work / "OVMF_VARS.fd"
        if not vars_copy.exists():  # kept across boots of one system, like a machine's NVRAM
            shutil.copyfile(prof.uefi.vars, vars_copy)
        argv = qemu_argv(disk, vars_copy, memory_mib=memory_mib, binhost_port=binhost_port)
        log = work / "console.log"
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        guest = cls(proc, log, time.monotonic())
        with open(log, "ab") as f:
            f.write(("$ " + " ".join(argv) + "\n").encode())
        threading.Thread(target=guest._read, daemon=True).start()
        return guest

    def _read(self) -> None:
        """The console into LOG as it came, and its lines with their seconds since qemu
        started into LOG.timed (where a step's time goes, read afterwards)."""
        assert self.proc.stdout is not None
        splitter = LineSplitter()
        with open(self.log, "ab") as f, open(self.log.with_suffix(".timed.log"), "a") as timed:

            def put(line: str) -> None:
                t = time.monotonic() - self.started
                self.lines.put((t, line))
                timed.write(f"{t:8.1f} {line.rstrip()}\n")
                timed.flush()

            while chunk := os.read(self.proc.stdout.fileno(), 65536):
                f.write(chunk)
                f.flush()
                for line in splitter.feed(chunk):
                    put(clean(line))
            for line in splitter.flush():
                put(clean(line))
        self.lines.put((time.monotonic() - self.started, ""))  # end of the console

    def expect(
        self, pattern: str, timeout: float, *, what: str, unless: str | None = None, panics: bool = False
    ) -> re.Match[str]:
        """The first line matching PATTERN (a regex searched in each whole line) within
        TIMEOUT seconds; a line matching UNLESS first, a panic (unless PANICS: a panic
        is expected), qemu's exit or the deadline raise ToolError naming the log."""
        rx = re.compile(pattern)
        bad = re.compile(unless) if unless else None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ToolError(f"{what}: no console line matching {pattern!r} within {timeout:g} s", log=self.log)
            try:
                t, line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line == "" and self.proc.poll() is not None and self.lines.empty():
                raise ToolError(f"{what}: qemu exited ({self.proc.returncode}) before {pattern!r}", log=self.log)
            self.seen.append(line)
            if is_panic(line) and not panics:
                raise ToolError(f"{what}: kernel panic: {line.strip()}", log=self.log)
            if bad is not None and bad.search(line):
                raise ToolError(f"{what}: {line.strip()}", log=self.log, details=self.seen[-40:])
            m = rx.search(line)
            if m:
                self.milestones.append(Milestone(round(t, 1), line.strip()))
                return m

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolError(f"qemu did not exit within {timeout:g} s", log=self.log) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
