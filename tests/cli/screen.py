"""The real CLI on a real terminal: tmux runs it in a detached pane of a given size, and
the test reads the screen back (capture-pane), as a person would see it, while it runs
(progress) or once it exits, and can type into it (`test --shell`)."""

from __future__ import annotations

import os
import re
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


class Pane:
    """`distkernel ARGS` running in a COLSxROWS tmux pane: read the screen while it runs,
    type into it, and collect the final screen once it exits."""

    def __init__(
        self,
        *args: str | os.PathLike[str],
        cols: int,
        cwd: Path,
        env: dict[str, str] | None = None,
        rows: int = 150,
    ) -> None:
        need_tmux()
        sock = f"dk-test-{uuid.uuid4().hex[:12]}"
        self.args = args
        self.done = cwd / f".{sock}.rc"
        env = dict(env or os.environ)
        env["PYTHONPATH"] = str(ROOT / "src")
        env.pop("TMUX", None)
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()) if k.isidentifier())
        argv = " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "distkernel", *args))
        done = shlex.quote(str(self.done))
        script = f"cd {shlex.quote(str(cwd))} && env -i {assigns} {argv}; echo $? > {done}; sleep 3600"
        self.base = ["tmux", "-L", sock, "-f", "/dev/null"]
        subprocess.run(
            [*self.base, "new-session", "-d", "-x", str(cols), "-y", str(rows), "/bin/sh", "-c", script],
            check=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"},
        )

    def capture(self, *flags: str) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-S", "-", *flags], capture_output=True, text=True, check=True
        ).stdout

    def exited(self) -> bool:
        return self.done.exists() and bool(self.done.read_text().strip())

    def wait_for(self, text: str | re.Pattern[str], timeout: float = 120) -> str:
        """The screen once TEXT (a string or a pattern) shows on it (AssertionError with
        the screen if it never does)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.capture("-J")
            if text in shown if isinstance(text, str) else text.search(shown):
                return shown
            if self.exited() or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen:\n{shown}")
            time.sleep(0.2)

    def type(self, line: str) -> None:
        """Type LINE and Enter, as a person would."""
        subprocess.run([*self.base, "send-keys", "-l", line], check=True)
        subprocess.run([*self.base, "send-keys", "Enter"], check=True)

    def finish(self, timeout: float = 600) -> Screen:
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                raise AssertionError(f"distkernel {self.args} did not finish; the screen:\n{self.capture()}")
            time.sleep(0.1)
        lines = self.capture().rstrip("\n").splitlines()
        joined = self.capture("-J").rstrip("\n").splitlines()
        styled = self.capture("-e")
        while lines and not lines[-1].strip():
            lines.pop()
        return Screen(lines, [j.rstrip() for j in joined if j.strip()], styled, int(self.done.read_text()))

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)
        self.done.unlink(missing_ok=True)

    def __enter__(self) -> Pane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def screen(
    *args: str | os.PathLike[str],
    cols: int,
    cwd: Path,
    env: dict[str, str] | None = None,
    rows: int = 150,
    timeout: float = 600,
) -> Screen:
    """Run `distkernel ARGS` in a COLSxROWS terminal; the screen once it exits."""
    with Pane(*args, cols=cols, cwd=cwd, env=env, rows=rows) as pane:
        return pane.finish(timeout)
