"""Output for humans (tables, progress on stderr) and for scripts (--json).

What a person copies (releases, option names, fixes, paths) is never cut: a table whose
columns do not fit the terminal folds into one record per row, prose wraps between
words only, and nothing is hard-wrapped inside a word (a value longer than the screen
is left to the terminal's soft wrap, which copies back as one line). Status words are
coloured on a terminal unless NO_COLOR is set; pipes and logs get plain text."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.text import Text
from rich.theme import Theme

from distkernel.core.progress import Progress, Silent, reporting


class StatusHighlighter(RegexHighlighter):
    """The words a reader scans for, in colour wherever they are printed."""

    base_style = "status."
    highlights = [  # noqa: RUF012 (rich's own API is a class attribute)
        r"(?P<bad>\b(NOT TAKEN|FAILED|FAIL|MISSING)\b)",
        r"(?P<good>\bPASS\b)",
    ]


THEME = Theme({"status.bad": "bold red", "status.good": "bold green", "status.took": "green", "key": "bold"})

out = Console(highlight=True, highlighter=StatusHighlighter(), theme=THEME, soft_wrap=True)
err = Console(stderr=True, highlight=True, highlighter=StatusHighlighter(), theme=THEME, soft_wrap=True)

GAP = "  "
INDENT = "  "


class _Emitted:
    json = False


emitted = _Emitted()


def emit_json(doc: Any) -> None:
    emitted.json = True
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")


def screen_width() -> int | None:
    """The terminal's width, or None for a pipe or a file (no width: nothing folds)."""
    return out.width if out.is_terminal else None


@dataclass(frozen=True)
class Note:
    """Prose under a row (`why: ...`, `fix: ...`): wrapped between words, never inside one."""

    label: str
    text: str


def _styled(cell: str) -> Text:
    return out.highlighter(Text(cell))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    notes: Sequence[Sequence[Note]] | None = None,
) -> None:
    """Aligned columns when they fit the terminal, else one record per row: the first
    cell on its own line (whole), the other fields as `label: value` below it. Notes
    print under their row in both forms."""
    cells = [[str(c) for c in r] for r in rows]
    width = screen_width()
    natural = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    fits = width is None or sum(natural) + len(GAP) * (len(columns) - 1) <= width
    if title:
        out.print(Text(title, style="key"))
    if fits:
        header = GAP.join(c.ljust(n) for c, n in zip(columns, natural, strict=True)).rstrip()
        if header.strip():
            out.print(Text(header, style="key"))
    for i, row in enumerate(cells):
        if fits:
            line = Text(GAP).join(_styled(c.ljust(n)) for c, n in zip(row, natural, strict=True))
            line.rstrip()
            out.print(line)
        else:
            _record(columns, row, width or 0)
        for note in (notes[i] if notes else ()) or ():
            _note(note, width, INDENT * (2 if fits else 1))


def _record(columns: Sequence[str], row: Sequence[str], width: int) -> None:
    """`KEY  label: value  label: value` packed to the width; a field that does not fit
    starts the next line; a field wider than the screen gets a line of its own."""
    line = Text(row[0], style="key")
    room = width - len(row[0])
    for label, value in zip(columns[1:], row[1:], strict=True):
        if not value.strip():
            continue
        field = Text(f"{label}: " if label else "").append_text(_styled(value))
        if len(field) + len(GAP) <= room:
            line.append(GAP).append_text(field)
            room -= len(field) + len(GAP)
        else:
            out.print(line)
            line = Text(INDENT).append_text(field)
            room = width - len(line)
    out.print(line)


def _note(note: Note, width: int | None, indent: str) -> None:
    head = f"{indent}{note.label}: " if note.label else indent
    if width is None:
        out.print(head + note.text, markup=False)
        return
    lines = textwrap.wrap(
        note.text,
        width=max(width, len(head) + 20),
        initial_indent=head,
        subsequent_indent=indent + INDENT,
        break_long_words=False,
        break_on_hyphens=False,
    )
    for line in lines:
        out.print(line, markup=False)


def field(label: str, value: str) -> None:
    """`label: value` on one line when it fits, else the value alone on the next line
    (a whole line is what a triple-click copies)."""
    width = screen_width()
    if width is None or len(label) + 2 + len(value) <= width:
        out.print(f"{label}: {value}", markup=False)
    else:
        out.print(f"{label}:", markup=False)
        out.print(value, markup=False, highlight=False)


def prose(text: str, *, console: Console | None = None) -> None:
    """A sentence wrapped between words on a terminal, as is elsewhere."""
    c = console or out
    width = c.width if c.is_terminal else None
    if width is None or len(text) <= width:
        c.print(text, markup=False)
        return
    for line in textwrap.wrap(text, width, subsequent_indent=INDENT, break_long_words=False, break_on_hyphens=False):
        c.print(line, markup=False)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@contextmanager
def progress() -> Iterator[Progress]:
    """Stages and a bar of units on stderr when it is a terminal; otherwise silence,
    without loading the bar (a third of rich's import time, paid by every install)."""
    if not err.is_terminal:
        yield Silent()
        return
    from distkernel.cli.progressbar import bar

    with bar(err) as shown, reporting(shown):  # also for stages not handed it (dracut under install)
        yield shown
