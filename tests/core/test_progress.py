"""core/progress: the renderer a stage reports to when none is handed down, a
download's bytes and rate, a silent tool's running time."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from distkernel.core.progress import Progress, Silent, Transfer, current, elapsed, reporting, transfer
from distkernel.core.tools import run


class Recorder:
    """A renderer that keeps what it was told (thread-safe: `elapsed` ticks from a thread)."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.updates: list[tuple[int, int | None]] = []
        self.texts: list[str] = []
        self.lock = threading.Lock()

    def stage(self, name: str, total: int | None = None) -> None:
        with self.lock:
            self.stages.append(name)

    def update(self, done: int, total: int | None = None) -> None:
        with self.lock:
            self.updates.append((done, total))

    def describe(self, text: str) -> None:
        with self.lock:
            self.texts.append(text)


def test_current_is_silent_unless_a_renderer_is_made_current() -> None:
    assert isinstance(current(), Silent)
    rec = Recorder()
    with reporting(rec):
        assert current() is rec
        transfer("x")(1, 2)
    assert isinstance(current(), Silent)
    assert rec.stages == ["download x"]


def test_a_download_shows_bytes_so_far_of_the_total_and_the_rate() -> None:
    rec, now = Recorder(), [100.0]
    callback = Transfer(rec, "linux-source-6.1.deb", every=0.5, clock=lambda: now[0])
    mib = 1024 * 1024
    callback(0, 4 * mib)
    now[0] += 1
    callback(mib, 4 * mib)
    now[0] += 0.1
    callback(mib + 10, 4 * mib)  # within `every` of the last: not shown
    now[0] += 1
    callback(4 * mib, 4 * mib)
    assert rec.stages == ["download linux-source-6.1.deb"]
    assert rec.updates == [(0, 4 * mib), (mib, 4 * mib), (4 * mib, 4 * mib)]
    assert rec.texts[1:] == ["1.0 MiB of 4.0 MiB, 1.0 MiB/s", "4.0 MiB of 4.0 MiB, 1.9 MiB/s"]
    unknown = Recorder()
    Transfer(unknown, "x", clock=lambda: 5.0)(2048, None)
    assert unknown.texts == ["2.0 KiB"]


def test_a_silent_tool_shows_it_is_running_and_for_how_long(tmp_path: Path) -> None:
    """The text comes from a ticker thread while the tool runs; it stops with the step."""
    rec = Recorder()
    # The tool waits until the ticker has reported, so no timing decides the outcome.
    flag = tmp_path / "ticked"
    waiter = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.01)"
    with elapsed("dracut", rec, every=0.05) as p:
        ticker = threading.Thread(target=_touch_when_ticked, args=(rec, flag))
        ticker.start()
        run([sys.executable, "-c", waiter], log=tmp_path / "log")
        ticker.join()
    assert p is rec and rec.stages == ["dracut"]
    assert rec.texts and rec.texts[0].startswith("running for ") and rec.texts[0].endswith(" s")
    assert not [t for t in threading.enumerate() if t.name == "progress-dracut"], "the ticker ends with the step"


def _touch_when_ticked(rec: Recorder, flag: Path) -> None:
    deadline = time.monotonic() + 60
    while not rec.texts and time.monotonic() < deadline:
        time.sleep(0.01)
    flag.write_text("")


def test_a_renderer_without_describe_still_gets_the_step() -> None:
    class Plain:
        def __init__(self) -> None:
            self.stages: list[str] = []

        def stage(self, name: str, total: int | None = None) -> None:
            self.stages.append(name)

        def update(self, done: int, total: int | None = None) -> None:
            pass

    plain: Progress = Plain()
    with elapsed("dracut", plain, every=0.01):
        time.sleep(0.05)
    assert plain.stages == ["dracut"]  # type: ignore[attr-defined]
