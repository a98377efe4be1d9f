"""Run one qemu boot: the serial console read from a pipe into a log as it arrives,
watched line by line, with a wall-clock deadline. qemu is stopped as soon as the
answer is known: the marker (after a short grace for the power-off), a panic (after
the trace), the deadline, or a KVM guest that never prints its first kernel line."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.progress import Progress
from distkernel.core.tools import require
from distkernel.workflows.boottest.console import (
    FIRMWARE,
    KERNEL_START_RE,
    MARKER_PHASE,
    LineSplitter,
    is_marker,
    is_panic,
    phase_after,
)

# After a panic the trace follows and qemu normally exits by itself; this is how long we
# wait for it before stopping it. After the marker nothing the test judges follows (the
# init's power-off), so qemu is stopped at once.
GRACE_S = 2.0


@dataclass(frozen=True)
class QemuRun:
    lines: list[str]
    status: int | None  # qemu's exit status; None when we stopped it
    stderr: str
    seconds: float  # wall time of the whole run
    marker_s: float | None  # time from start to the marker line
    timed_out: bool
    kvm_hung: bool  # KVM: no kernel line within the first-line deadline


def run_qemu(
    argv: list[str],
    *,
    token: str,
    timeout: float,
    console_log: Path,
    first_line_deadline: float | None = None,
    progress: Progress | None = None,
) -> QemuRun:
    """PROGRESS gets a stage per boot phase (console.PHASES) and the elapsed seconds,
    both out of TIMEOUT."""
    require(argv[0])
    start = time.monotonic()
    phase = FIRMWARE
    total = max(1, round(timeout))
    if progress is not None:
        progress.stage(phase, total)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    splitter = LineSplitter()
    lines: list[str] = []
    err = bytearray()
    marker_s: float | None = None
    stop_at = start + timeout
    kernel_started = False
    timed_out = kvm_hung = False
    with open(console_log, "wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        while sel.get_map():
            now = time.monotonic()
            if first_line_deadline is not None and not kernel_started and now - start > first_line_deadline:
                kvm_hung = True
                break
            if now >= stop_at:
                timed_out = marker_s is None
                break
            if progress is not None:
                progress.update(int(now - start), total)
            for key, _ in sel.select(timeout=min(0.2, stop_at - now)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if key.data == "err":
                    err += chunk
                    continue
                log.write(chunk)
                log.flush()
                for line in splitter.feed(chunk):
                    lines.append(line)
                    kernel_started = kernel_started or KERNEL_START_RE.search(line) is not None
                    was, phase = phase, MARKER_PHASE if is_marker(line, token) else phase_after(phase, line)
                    if progress is not None and phase != was:
                        progress.stage(phase, total)
                        progress.update(int(time.monotonic() - start), total)
                    if marker_s is None and is_marker(line, token):
                        marker_s = time.monotonic() - start
                        stop_at = time.monotonic()
                    elif marker_s is None and is_panic(line):
                        stop_at = min(stop_at, time.monotonic() + GRACE_S)
        lines.extend(splitter.flush())
        status: int | None = None
        if not sel.get_map():  # both pipes closed: qemu has exited (or is about to)
            status = proc.wait()
        else:
            proc.kill()
            proc.wait()
        if err:
            log.write(b"\n--- qemu stderr ---\n" + bytes(err))
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
    return QemuRun(
        lines=lines,
        status=status,
        stderr=err.decode("utf-8", "replace"),
        seconds=time.monotonic() - start,
        marker_s=marker_s,
        timed_out=timed_out,
        kvm_hung=kvm_hung,
    )
