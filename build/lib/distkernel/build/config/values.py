"""Reading and writing .config text: fragments (with their origin per line) and the
effective configuration."""

from __future__ import annotations

import gzip
import lzma
import re
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import UserError

SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Origin:
    """Where a requested value came from: a file (with line) or a recipe key."""

    where: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}:{self.line}" if self.line else self.where


@dataclass(frozen=True)
class Setting:
    symbol: str
    value: str  # y, m, n, a number, or a quoted string
    origin: Origin


def parse_line(line: str) -> tuple[str, str] | None:
    """(symbol, value) of one .config line; None for blank lines and comments."""
    line = line.strip()
    if m := SET_RE.match(line):
        return m.group(1), m.group(2)
    if m := UNSET_RE.match(line):
        return m.group(1), "n"
    if not line or line.startswith("#"):
        return None
    raise ValueError(line)


def parse_fragment(path: Path, label: str | None = None, *, echo: bool = True) -> list[Setting]:
    """Settings of a fragment file; any line that is neither `CONFIG_X=value` nor
    `# CONFIG_X is not set` (nor blank/comment) is an error naming file:line, and quoting
    the line only with `echo` (a file the recipe's author wrote: never one it merely names)."""
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise UserError(f"{path}: cannot read config fragment: {e.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed = parse_line(line)
        except ValueError:
            quoted = f": `{line.strip()}`" if echo else ""
            raise UserError(
                f"{path}:{number}: not a config line{quoted} (expected CONFIG_NAME=value or `# CONFIG_NAME is not set`)"
            ) from None
        if parsed:
            out.append(Setting(parsed[0], parsed[1], Origin(label or str(path), number)))
    return out


def read_text_any(path: Path) -> str:
    """A config file as text, also when gzip'ed (/proc/config.gz) or xz'ed (Debian's)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    return data.decode(errors="replace")


def read_config(path: Path) -> dict[str, str]:
    """Effective values of a .config; `# ... is not set` reads as n."""
    return parse_config(read_text_any(path))


def parse_config(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        try:
            parsed = parse_line(line)
        except ValueError:
            continue
        if parsed:
            values[parsed[0]] = parsed[1]
    return values


def format_line(symbol: str, value: str) -> str:
    return f"# {symbol} is not set" if value == "n" else f"{symbol}={value}"


def merge_into(config_text: str, settings: list[tuple[str, str]]) -> str:
    """`config_text` with the lines of each symbol in `settings` moved to the end, in
    the order given, like merge_config.sh does before olddefconfig resolves it: kconfig
    keeps the last `=y` member of a choice, so the later input must come last."""
    last = dict(settings)
    order = list(dict.fromkeys(s for s, _ in reversed(settings)))[::-1]
    lines = []
    for line in config_text.splitlines():
        try:
            parsed = parse_line(line)
        except ValueError:
            parsed = None
        if not (parsed and parsed[0] in last):
            lines.append(line)
    lines.extend(format_line(s, last[s]) for s in order)
    return "\n".join(lines) + "\n"
