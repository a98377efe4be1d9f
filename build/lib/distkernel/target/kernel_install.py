"""A root's kernel-install configuration, read once and the way kernel-install reads it:
/etc/kernel/install.conf if it exists, else /usr/lib/kernel/install.conf (the first
file wins whole; the two are not merged), as shell KEY=value lines. Errors name the
file that was actually read, with its line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_CONF = ("etc/kernel/install.conf", "usr/lib/kernel/install.conf")


@dataclass(frozen=True)
class InstallConf:
    path: Path | None  # the file read, or None when the root has neither
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # key -> line number, for errors

    def get(self, key: str) -> str | None:
        return self.values.get(key) or None

    def where(self, key: str) -> str:
        """`ROOT/etc/kernel/install.conf:3` for a key's line."""
        return f"{self.path}:{self.lines.get(key, 1)}"


def read_shell_vars(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """KEY=value lines (shell quoting, comments) and the line each key was set on.
    A file that cannot be read has no values."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return values, lines
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value, comments=True)
        except ValueError:
            parts = [value]
        values[key.strip()] = " ".join(parts)
        lines[key.strip()] = number
    return values, lines


def read_install_conf(root: Path) -> InstallConf:
    for rel in INSTALL_CONF:
        path = root / rel
        if path.exists():
            values, lines = read_shell_vars(path)
            return InstallConf(path, values, lines)
    return InstallConf(None)
