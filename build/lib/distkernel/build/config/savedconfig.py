"""savedconfig: a folder of `config-<version>` files (as Gentoo's savedconfig).
The exact version wins; else the newest earlier one, brought forward by olddefconfig.
A folder with neither is an error, never a silent fallback to something generic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VERSION_RE = re.compile(r"^config-(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Saved:
    path: Path
    version: str
    exact: bool


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("-")[0]))


def find_saved(folder: Path, version: str) -> Saved | None:
    """The config for `version` in `folder`: `config-<version>` (a local suffix like
    `config-6.1.192-gentoo` is allowed), else the newest earlier version."""
    want = version_tuple(version)
    candidates = []
    for path in folder.iterdir() if folder.is_dir() else ():
        m = VERSION_RE.match(path.name)
        if m and path.is_file():
            candidates.append((version_tuple(m.group(1)), path.name, path))
    exact = sorted(c for c in candidates if c[0] == want)
    if exact:
        return Saved(exact[0][2], version, True)
    earlier = sorted(c for c in candidates if c[0] < want)
    if earlier:
        found = earlier[-1]
        return Saved(found[2], ".".join(map(str, found[0])), False)
    return None
