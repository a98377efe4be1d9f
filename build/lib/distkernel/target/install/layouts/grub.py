"""grub: plain's files plus a grub.cfg for the kernels distkernel manages, default first
(when the root has grub-mkconfig, install runs it after the commit instead)."""

from __future__ import annotations

import os

from distkernel.target.install.layouts import plain
from distkernel.target.install.layouts.base import (
    KernelFiles,
    Layout,
    Placement,
    Shared,
    boot_text,
    group_default,
    spec,
)
from distkernel.target.install.state import KernelRecord, State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction

HEADER = (
    "# Written by distkernel for the kernels it installed; rewritten on every install,",
    "# remove and rollback. Do not edit: use /etc/kernel/cmdline and `distkernel rollback`.",
    "set default=0",
)


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    """plain's files; the entry naming the kernel is the grub.cfg all grub kernels share."""
    p = plain.place(tx, target, files)
    p.entry = target.fmt(spec("grub")["config"], files.release)
    return p


def writes(target: Target, release: str) -> list[str]:
    ours = [] if has_mkconfig(target) else [target.fmt(spec("grub")["config"], release)]
    return plain.writes(target, release) + ours


def has_mkconfig(target: Target) -> str | None:
    return next((p for p in spec("grub")["mkconfig"] if (target.root / p).exists()), None)


def grub_path(target: Target, rel: str) -> str:
    """A root-relative path as GRUB sees it: from /boot's own filesystem when it is one."""
    if os.path.ismount(target.path(target.boot)):
        return "/" + os.path.relpath(rel, target.boot)
    return "/" + rel


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def menuentry(target: Target, k: KernelRecord) -> list[str]:
    image = grub_path(target, k.image)
    lines = [
        f"menuentry {_quote(f'{target.pretty_name()}, Linux {k.release}')} --id {_quote('distkernel-' + k.release)} {{",
        f"\tsearch --no-floppy --file --set=root {image}",
        f"\tlinux {image} {k.cmdline}".rstrip(),
    ]
    if k.initrd:
        lines.append(f"\tinitrd {grub_path(target, k.initrd)}")
    lines.append("}")
    return lines


def render(target: Target, state: State) -> bytes:
    default, _ = group_default(state, ("grub",))
    kernels = [k for k in state.ordered() if k.layout == "grub"]
    kernels.sort(key=lambda k: k is not default)  # stable: default first, then newest first
    s = spec("grub")
    lines = [*HEADER, f"set timeout={s['timeout']}", *(f"insmod {m}" for m in s["insmod"])]
    return boot_text(target.fmt(s["config"], ""), lines + [line for k in kernels for line in menuentry(target, k)])


def shared(target: Target, state: State) -> dict[str, Shared]:
    if not any(k.layout == "grub" for k in state.kernels.values()) or has_mkconfig(target):
        return {}
    return {target.fmt(spec("grub")["config"], ""): Shared(data=render(target, state))}


LAYOUT = Layout("grub", place, writes, shared)
