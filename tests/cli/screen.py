"""The real CLI on a real terminal: tmux runs it in a detached pane of a given size, and
the test reads the screen back (capture-pane), as a person would see it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Screen:
    lines: list[str]  # physical lines, as shown (a soft-wrapped line is several)
    joined: list[str]  # logical lines (tmux joins soft wraps: what a copy gives)
    styled: str  # the screen with its colour escapes
    code: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def need_tmux() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux; ./bootstrap installs it)")


def screen(
    *args: str | os.PathLike[str],
    cols: int,
    cwd: Path,
    env: dict[str, str] | None = None,
    rows: int = 150,
    timeout: float = 600,
) -> Screen:
    """Run `distkernel ARGS` in a COLSxROWS terminal; the screen once it exits."""
    need_tmux()
    sock = f"dk-test-{uuid.uuid4().hex[:12]}"
    done = cwd / f".{sock}.rc"
    env = dict(env or os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    env.pop("TMUX", None)
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()) if k.isidentifier())
    argv = " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "distkernel", *args))
    script = f"cd {shlex.quote(str(cwd))} && env -i {assigns} {argv}; echo $? > {shlex.quote(str(done))}; sleep 3600"
    base = ["tmux", "-L", sock, "-f", "/dev/null"]
    subprocess.run(
        [*base, "new-session", "-d", "-x", str(cols), "-y", str(rows), "/bin/sh", "-c", script],
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"},
    )
    try:
        deadline = time.monotonic() + timeout
        while not done.exists() or not done.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"distkernel {args} did not finish")
            time.sleep(0.1)

        def capture(*flags: str) -> str:
            return subprocess.run(
                [*base, "capture-pane", "-p", "-S", "-", *flags], capture_output=True, text=True, check=True
            ).stdout

        lines = capture().rstrip("\n").splitlines()
        joined = capture("-J").rstrip("\n").splitlines()
        styled = capture("-e")
        while lines and not lines[-1].strip():
            lines.pop()
        return Screen(lines, [j.rstrip() for j in joined if j.strip()], styled, int(done.read_text()))
    finally:
        subprocess.run([*base, "kill-server"], check=False, capture_output=True)
        done.unlink(missing_ok=True)
