"""The progress bar on a terminal's stderr: stages, units done of those expected, and
a line of detail. Imported only when stderr is a terminal (render.progress)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TextColumn, TimeElapsedColumn
from rich.text import Text


class RichProgress:
    """Stages and a bar of units (objects)."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.task: Any = None
        self.name = ""

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task, self.name = self.bar.add_task(name, total=total), name

    def describe(self, text: str) -> None:
        """A download's bytes and rate, a silent tool's seconds: after the step's name
        (and instead of the count, which would say the same in raw units)."""
        if self.task is not None:
            self.bar.update(self.task, description=f"{self.name} {text}", described=True)

    def update(self, done: int, total: int | None = None) -> None:
        if self.task is not None:
            # An estimate may be short: grow it rather than sit at 100%.
            grown = max(total or 0, done + 1) if total else None
            self.bar.update(self.task, completed=done, total=grown)


class _Count(MofNCompleteColumn):
    """N/M objects, unless the step's text already says how far it is."""

    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("described") else super().render(task)


@contextmanager
def bar(console: Console) -> Iterator[RichProgress]:
    shown = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with shown:
        yield RichProgress(shown)
