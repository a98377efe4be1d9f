"""plain: installkernel's names in /boot, and vmlinuz / vmlinuz.old links that follow
the default and the previous kernel (grub builds on it)."""

from __future__ import annotations

import os

from distkernel.target.install.layouts.base import (
    KernelFiles,
    Layout,
    Placement,
    Shared,
    group_default,
    spec,
    stage_file,
)
from distkernel.target.install.state import State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    s = spec("plain")
    p = Placement()
    p.image = target.fmt(s["image"], files.release)
    stage_file(tx, files.image, p.image, p)
    if files.initrd is not None:
        p.initrd = target.fmt(s["initrd"], files.release)
        stage_file(tx, files.initrd, p.initrd, p)
    stage_file(tx, files.system_map, target.fmt(s["system_map"], files.release), p)
    stage_file(tx, files.config, target.fmt(s["config"], files.release), p)
    return p


def writes(target: Target, release: str) -> list[str]:
    s = spec("plain")
    keys = ("image", "initrd", "system_map", "config", "default_link", "previous_link")
    return [target.fmt(s[k], release) for k in keys]


def shared(target: Target, state: State) -> dict[str, Shared]:
    s = spec("plain")
    default, previous = group_default(state, ("plain", "grub"))
    out: dict[str, Shared] = {}
    for key, kernel in (("default_link", default), ("previous_link", previous)):
        if kernel is not None:
            link = target.fmt(s[key], kernel.release)
            out[link] = Shared(link=os.path.relpath(kernel.image, os.path.dirname(link)))
    return out


LAYOUT = Layout("plain", place, writes, shared)
