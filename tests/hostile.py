"""What every hostile-input test asserts, in one place: the real CLI in a subprocess
(its peak memory measured), a refusal that is one line with exit 2 and no traceback,
and trees compared byte for byte before and after."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

Snapshot = dict[str, tuple[str, int, str]]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    max_rss_mb: float

    @property
    def first_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[0] if lines else ""


# The address space one CLI run may reserve: far more than a real run needs, far less than
# a 3 GiB member held in memory. A run that tried would fail, and its test with it.
MEMORY_LIMIT = 2 << 30


def _peak_mb(pid: int, done: threading.Event, peak: list[float]) -> None:
    """The child's own high-water mark (VmHWM of its memory after exec), sampled until it
    ends: wait4's ru_maxrss also counts the pages of the process it was forked from."""
    status = Path(f"/proc/{pid}/status")
    while not done.wait(0.02):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        except (OSError, ValueError, IndexError):
            pass


def run_cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 300) -> Outcome:
    """The real entry point under MEMORY_LIMIT, with its peak memory; output goes to
    files, so that this process reaps the child itself; killed past TIMEOUT seconds."""
    # prlimit (util-linux) sets the limit and execs the CLI in the same process
    argv = ["prlimit", f"--as={MEMORY_LIMIT}", sys.executable, "-m", "distkernel", *map(str, args)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        timer = threading.Timer(timeout, proc.kill)
        done, peak = threading.Event(), [0.0]
        sampler = threading.Thread(target=_peak_mb, args=(proc.pid, done, peak), daemon=True)
        timer.start()
        sampler.start()
        try:
            _, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_out, text_err = out.read(), err.read()
    assert proc.returncode != -signal.SIGKILL, f"{argv[5:]} ran past {timeout} s: {text_err[-500:]}"
    return Outcome(proc.returncode, text_out, text_err, peak[0])


def assert_refused(o: Outcome) -> None:
    """Exit 2, one `distkernel: error:` line, no traceback."""
    assert "Traceback" not in o.err, o.err
    assert o.code == 2, (o.code, o.err[-2000:])
    lines = o.err.strip().splitlines()
    assert lines and lines[0].startswith("distkernel: error: "), o.err
    assert "\n" not in lines[0]


def snapshot(top: Path) -> Snapshot:
    """Every entry under TOP (links not followed): kind, mode and content hash or target."""
    out: Snapshot = {}
    if not top.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(top))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[rel] = ("other", st.st_mode, "")
    return out


class Tally:
    """Counts per verdict, written to $DISTKERNEL_FUZZ_REPORT (JSON) when set."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.counts: Counter[str] = Counter()

    def add(self, verdict: str) -> None:
        self.counts["tried"] += 1
        self.counts[verdict] += 1
        path = os.environ.get("DISTKERNEL_FUZZ_REPORT")
        if path:
            report = Path(path)
            doc = json.loads(report.read_text()) if report.exists() else {}
            doc[self.kind] = dict(self.counts)
            report.write_text(json.dumps(doc, indent=1, sort_keys=True))
