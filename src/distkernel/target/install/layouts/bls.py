"""bls: Boot Loader Specification Type #1: TOKEN/RELEASE/{linux,initrd} and
loader/entries/TOKEN-RELEASE.conf on the ESP (or /boot), paths relative to that
partition; loader.conf's `default` names the default entry (bls and uki)."""

from __future__ import annotations

import os

from distkernel.target.install.layouts import (
    KernelFiles,
    Placement,
    Shared,
    group_default,
    on_partition,
    spec,
    stage_bytes,
    stage_file,
)
from distkernel.target.install.state import State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction


def entry_text(target: Target, files: KernelFiles, image: str, initrd: str) -> str:
    lines = [
        f"title      {target.pretty_name()}",
        f"version    {files.release}",
        *([f"machine-id {target.machine_id}"] if target.machine_id else []),
        f"sort-key   {target.token}",
        *([f"options    {files.cmdline}"] if files.cmdline else []),
        f"linux      {on_partition(image, target.esp)}",
        *([f"initrd     {on_partition(initrd, target.esp)}"] if initrd else []),
    ]
    return "\n".join(lines) + "\n"


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
    p.files.append(stage_bytes(tx, entry_text(target, files, p.image, p.initrd).encode(), p.entry))
    return p


def loader_conf(current: str, default_id: str) -> str:
    """The root's loader.conf with our `default` line (other settings are the user's)."""
    kept = [line for line in current.splitlines() if line.split()[:1] != ["default"]]
    return "\n".join([*kept, f"default {default_id}"]) + "\n"


def shared(target: Target, state: State) -> dict[str, Shared]:
    default, _ = group_default(state, ("bls", "uki"))
    if default is None:
        return {}
    path = target.fmt(spec(default.layout)["loader_conf"], "")
    try:
        current = target.path(path).read_text()
    except FileNotFoundError:
        current = ""
    ident = os.path.basename(default.entry or default.uki)
    return {path: Shared(data=loader_conf(current, ident).encode(), owned=False)}
