"""Output for humans (rich tables, progress on stderr) and for scripts (--json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from distkernel.core.progress import reporting

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)
if not out.is_terminal:  # logs and pipes: do not squeeze tables into 80 columns
    out.width = 200


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(x) for x in r))
    out.print(t)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class RichProgress:
    """Stages and a bar of units (objects) on stderr; nothing when stderr is no terminal."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.task: Any = None
        self.name = ""

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task, self.name = self.bar.add_task(name, total=total), name

    def describe(self, text: str) -> None:
        """A download's bytes and rate, a silent tool's seconds: after the step's name."""
        if self.task is not None:
            self.bar.update(self.task, description=f"{self.name} {text}")

    def update(self, done: int, total: int | None = None) -> None:
        if self.task is not None:
            # An estimate may be short: grow it rather than sit at 100%.
            grown = max(total or 0, done + 1) if total else None
            self.bar.update(self.task, completed=done, total=grown)


@contextmanager
def progress() -> Iterator[RichProgress]:
    bar = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    shown = RichProgress(bar)
    with bar, reporting(shown):  # also for stages not handed it (dracut under install)
        yield shown
