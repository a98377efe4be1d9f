"""bls: Boot Loader Specification Type #1: TOKEN/RELEASE/{linux,initrd} and
loader/entries/TOKEN-RELEASE.conf on the ESP (or /boot), paths relative to that
partition; loader.conf's `default` names the default entry (bls and uki)."""

from __future__ import annotations

import os

from distkernel.core.errors import UserError
from distkernel.target.install.layouts.base import (
    KernelFiles,
    Layout,
    Placement,
    Shared,
    boot_text,
    group_default,
    on_partition,
    spec,
    stage_bytes,
    stage_file,
)
from distkernel.target.install.state import State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction


def entry_text(target: Target, files: KernelFiles, image: str, initrd: str, path: str) -> bytes:
    lines = [
        f"title      {target.pretty_name()}",
        f"version    {files.release}",
        *([f"machine-id {target.machine_id}"] if target.machine_id else []),
        f"sort-key   {target.token}",
        *([f"options    {files.cmdline}"] if files.cmdline else []),
        f"linux      {on_partition(image, target.esp)}",
        *([f"initrd     {on_partition(initrd, target.esp)}"] if initrd else []),
    ]
    return boot_text(path, lines)


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    s = spec("bls")
    p = Placement()
    p.image = target.fmt(s["image"], files.release)
    p.dirs.append(os.path.dirname(p.image))
    stage_file(tx, files.image, p.image, p)
    if files.initrd is not None:
        p.initrd = target.fmt(s["initrd"], files.release)
        stage_file(tx, files.initrd, p.initrd, p)
    p.entry = target.fmt(s["entry"], files.release)
    p.files.append(stage_bytes(tx, entry_text(target, files, p.image, p.initrd, p.entry), p.entry))
    return p


# loader.conf is the user's file: distkernel owns only the `default` line right after
# this comment (systemd-boot has no end-of-line comments) and leaves every other line.
MARK = "# distkernel: the next line names the default kernel"


def writes(target: Target, release: str) -> list[str]:
    return [target.fmt(spec("bls")[k], release) for k in ("image", "initrd", "entry")]


def loader_conf(path: str, current: str, default_id: str | None) -> bytes:
    """The root's loader.conf with our `default` line naming DEFAULT_ID (None: without
    it); a `default` line that is not ours is refused, never replaced."""
    kept: list[str] = []
    ours = False
    for line in current.splitlines():
        if line == MARK:
            ours = True
            continue
        if line.split()[:1] == ["default"]:
            if not ours:
                raise UserError(
                    f"{path}: its line {line!r} was not written by distkernel, which would replace it; "
                    "remove that line (distkernel then keeps `default` following its default kernel) and retry"
                )
        else:
            kept.append(line)
        ours = False
    mine = [MARK, f"default {default_id}"] if default_id else []
    return boot_text(path, [*kept, *mine])


def shared(target: Target, state: State) -> dict[str, Shared]:
    default, _ = group_default(state, ("bls", "uki"))
    layouts = [default.layout] if default else ["bls", "uki"]
    out: dict[str, Shared] = {}
    for path in dict.fromkeys(target.fmt(spec(layout)["loader_conf"], "") for layout in layouts):
        try:
            current = target.path(path).read_text()
        except (FileNotFoundError, NotADirectoryError):
            current = ""
        if default is None and MARK not in current.splitlines():
            continue  # no line of ours to take out
        ident = os.path.basename(default.entry or default.uki) if default else None
        out[path] = Shared(data=loader_conf(path, current, ident), owned=False)
    return out


LAYOUT = Layout("bls", place, writes, shared)
