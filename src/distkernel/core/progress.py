"""How stages report progress without knowing how it is shown: the CLI passes a
renderer, library callers get the silent default."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """A new step begins; `total` units expected when known."""

    def update(self, done: int, total: int | None = None) -> None:
        """Units done so far in the current step."""


class Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def update(self, done: int, total: int | None = None) -> None:
        pass
