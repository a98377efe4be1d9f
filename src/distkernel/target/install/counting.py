"""Boot counting names (Boot Loader Specification, "Boot counting"): an entry file
NAME.EXT carries its tries as NAME+LEFT.EXT or NAME+LEFT-DONE.EXT. The boot loader
renames it on each try (LEFT down, DONE up); systemd-bless-boot or `distkernel
mark-good` renames it to NAME.EXT after a good boot; LEFT 0 marks a bad entry. So the
file of an entry is found by its name without the counter, whatever its state."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

COUNTED = re.compile(r"^(?P<stem>.+?)\+(?P<left>\d+)(?:-(?P<done>\d+))?(?P<ext>\.[^.+-]+)$")


@dataclass(frozen=True)
class Tries:
    """An entry's counter as its file name says: LEFT tries left, DONE tries done."""

    left: int
    done: int

    @property
    def bad(self) -> bool:
        return self.left == 0


def split(name: str) -> tuple[str, Tries | None]:
    """(the name without a counter, its counter or None)."""
    m = COUNTED.match(name)
    if m is None:
        return name, None
    return m["stem"] + m["ext"], Tries(int(m["left"]), int(m["done"] or 0))


def counted(name: str, tries: int) -> str:
    """NAME.EXT with TRIES tries left and none done (NAME.EXT itself for 0: no counting)."""
    plain, _ = split(name)
    if tries <= 0:
        return plain
    stem, ext = os.path.splitext(plain)
    return f"{stem}+{tries}{ext}"


def plain(rel: str) -> str:
    """REL without a counter in its file name."""
    return os.path.join(os.path.dirname(rel), split(os.path.basename(rel))[0])


def find(root: Path, rel: str) -> str | None:
    """Where the entry recorded as REL (root-relative) is now: REL itself, else the one
    file in its folder that has its name once counters are taken off, else None."""
    if (root / rel).is_file():
        return rel
    folder = os.path.dirname(rel)
    want = split(os.path.basename(rel))[0]
    try:
        names = sorted(os.listdir(root / folder))
    except OSError:
        return None
    found = [n for n in names if n != os.path.basename(rel) and split(n)[0] == want and (root / folder / n).is_file()]
    return os.path.join(folder, found[0]) if len(found) == 1 else None


def tries(root: Path, rel: str) -> Tries | None:
    """The counter of the entry recorded as REL as it is now (None: not counted, or gone)."""
    now = find(root, rel)
    return split(os.path.basename(now))[1] if now else None


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """An order of versions close to systemd-boot's (strverscmp_improved): runs of digits
    compare as numbers and above letters, `~` below everything, other separators ignored."""
    key = []
    for run in re.findall(r"~|\d+|[A-Za-z]+", version):
        if run == "~":
            key.append((-1, 0, ""))
        elif run.isdigit():
            key.append((2, int(run), ""))
        else:
            key.append((1, 0, run))
    return (*key, (0, 0, ""))
