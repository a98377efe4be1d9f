"""How stages report progress without knowing how it is shown: the CLI passes a
renderer, library callers get the silent default.

A renderer has `stage` and `update` (units: objects, bytes); one that can also show a
line of text for the current step (a download's rate, a tool's seconds) has `describe`.
Code deep below the CLI that is not handed a renderer (dracut under an install) reports
to `current()`: the one the CLI made current with `reporting()`, else silence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, runtime_checkable


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """A new step begins; `total` units expected when known."""

    def update(self, done: int, total: int | None = None) -> None:
        """Units done so far in the current step."""


@runtime_checkable
class Describes(Protocol):
    def describe(self, text: str) -> None:
        """A line of detail for the current step, replacing the previous one."""


class Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def update(self, done: int, total: int | None = None) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


_current: ContextVar[Progress | None] = ContextVar("distkernel_progress", default=None)


def current() -> Progress:
    return _current.get() or Silent()


@contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make `progress` the one `current()` gives, for the duration."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)


def describe(progress: Progress, text: str) -> None:
    if isinstance(progress, Describes):
        progress.describe(text)


def step(progress: Progress, stage: str, sub: str, total: int | None = None) -> None:
    """A sub-step of a stage (`config: olddefconfig`)."""
    progress.stage(f"{stage}: {sub}", total)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# A download's callback: bytes received so far, and the total when the server said it.
ByteCallback = Callable[[int, "int | None"], None]


class Transfer:
    """The progress of one download in bytes, as a ByteCallback: the step's units are
    bytes, its text the bytes so far (of the total) and the rate. A renderer is told
    at most every `every` seconds (and at the end), whatever the chunk size."""

    def __init__(self, progress: Progress, name: str, every: float = 0.25, clock: Callable[[], float] = time.monotonic):
        self.progress, self.name, self.every, self.clock = progress, name, every, clock
        self.start: float | None = None
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = self.clock()
        if self.start is None:
            self.start = self.last = now
            self.progress.stage(f"download {self.name}", total)
        elif now - self.last < self.every and done != total:
            return
        self.last = now
        self.progress.update(done, total)
        describe(self.progress, self.text(done, total, now - self.start))

    @staticmethod
    def text(done: int, total: int | None, seconds: float) -> str:
        size = f"{human_bytes(done)} of {human_bytes(total)}" if total else human_bytes(done)
        rate = f", {human_bytes(done / seconds)}/s" if seconds > 0 else ""
        return f"{size}{rate}"


def transfer(name: str, progress: Progress | None = None) -> ByteCallback:
    """The callback a download calls with (bytes so far, total or None)."""
    return Transfer(progress or current(), name)


@contextmanager
def elapsed(name: str, progress: Progress | None = None, every: float = 1.0) -> Iterator[Progress]:
    """A step without units (a tool that is silent until it ends, like dracut): the
    step begins, and its text says for how long it has run, once every `every`
    seconds, from a thread that stops with the step."""
    progress = progress or current()
    progress.stage(name)
    start, stop = time.monotonic(), threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            describe(progress, f"running for {int(time.monotonic() - start)} s")

    ticker = threading.Thread(target=tick, name=f"progress-{name}", daemon=True)
    ticker.start()
    try:
        yield progress
    finally:
        stop.set()
        ticker.join()
