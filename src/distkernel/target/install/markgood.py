"""Who ends a kernel's trial on a root that runs systemd: distkernel's own unit, which runs
`distkernel mark-good` after a good boot (data/distkernel-mark-good.service). A kernel on
trial that nothing marks good is given up after its tries although it was fine, so
install places the unit, enabled, as shared files of the state (`shared`), and refuses
a kernel on trial where nothing in the root could mark it (`refuse_unmarkable`). What
and where: data/markgood.toml."""

from __future__ import annotations

import os
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.core.errors import UserError
from distkernel.target.install.layouts.base import Shared, spec
from distkernel.target.install.plugins import in_root
from distkernel.target.install.state import State, on_disk
from distkernel.target.install.target import Target


@cache
def data() -> dict[str, Any]:
    return tomllib.loads(resources.files("distkernel.target.data").joinpath("markgood.toml").read_text())


@cache
def unit_text() -> bytes:
    return resources.files("distkernel.target.data").joinpath(data()["unit_file"]).read_bytes()


def counts(layout: str) -> bool:
    """LAYOUT puts new kernels on trial (boot counting)."""
    return int(spec(layout).get("tries", 0)) > 0


def runs_systemd(root: Path) -> bool:
    return any(in_root(root, p).is_file() for p in data()["systemd"])


def has_command(root: Path) -> bool:
    """The unit's command is where systemd looks for it in ROOT, executable."""
    d = data()
    return any(os.access(p, os.X_OK) and p.is_file() for p in (in_root(root, f"{f}/{d['command']}") for f in d["path"]))


def _unit_is_ours(root: Path, state: State) -> bool:
    """The unit's path is free, holds our unit, or holds one we placed (an older one)."""
    rel = data()["unit"]
    path = root / rel
    if not os.path.lexists(path):
        return True
    if not path.is_symlink() and path.is_file() and path.read_bytes() == unit_text():
        return True
    placed = next((f for f in state.shared if f.path == rel), None)
    return placed is not None and on_disk(root, placed)


def shared(target: Target, state: State) -> dict[str, Shared]:
    """The unit and its enabling link, while STATE has a kernel of a counting layout in a
    root that runs systemd and has the unit's command. A link once placed and then removed
    in the root (`systemctl disable`) is not placed again; an administrator's own file at
    the unit's path is theirs, and so is its link."""
    root, d = target.root, data()
    if not any(counts(k.layout) for k in state.kernels.values()):
        return {}
    if not (runs_systemd(root) and has_command(root)):
        return {}
    link = root / d["wants"]
    if not _unit_is_ours(root, state):
        return {d["wants"]: Shared(link=os.readlink(link), owned=False)} if link.is_symlink() else {}
    out = {d["unit"]: Shared(data=unit_text())}
    now = os.readlink(link) if link.is_symlink() else None
    if now == d["link"]:
        out[d["wants"]] = Shared(link=d["link"])
    elif now == d["enabled_link"]:
        out[d["wants"]] = Shared(link=now, owned=False)  # systemctl's: enabled all the same
    elif not os.path.lexists(link) and d["unit"] not in {f.path for f in state.shared}:
        out[d["wants"]] = Shared(link=d["link"])  # placed with the unit; later only kept
    return out


def goes_on_trial(layout: str, release: str, state: State) -> bool:
    """RELEASE installed with LAYOUT into a root holding STATE is on trial."""
    if not counts(layout):
        return False
    if layout not in data()["trial_needs_known_good"]:
        return True
    return any(k.layout == layout and k.known_good and k.bootable and k.release != release for k in state.ordered())


def refuse_unmarkable(target: Target, layout: str, release: str, state: State) -> None:
    """Before anything is written: a kernel that goes on trial in a root that runs
    systemd is refused when nothing there could mark it good: neither the unit's command
    nor, for the layouts systemd-bless-boot serves, that."""
    root, d = target.root, data()
    if not goes_on_trial(layout, release, state) or not runs_systemd(root) or has_command(root):
        return
    if layout in d["bless_layouts"] and any(in_root(root, p).is_file() for p in d["bless"]):
        return
    served = layout in d["bless_layouts"]
    bless = ", nor systemd-bless-boot" if served else ""
    fix = " (or, for systemd-boot's own marking, Debian's systemd-boot package)" if served else ""
    raise UserError(
        f"--root {root}: a {layout} kernel goes on trial there and nothing would mark it good after a good boot "
        f"(the root runs systemd but has no `{d['command']}` in {', '.join('/' + f for f in d['path'][:4])} "
        f"for {d['unit_file']}{bless}): it would be given up after {spec(layout)['tries']} boots; "
        f"install distkernel into the root first{fix}"
    )
