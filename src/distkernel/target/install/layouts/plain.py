"""plain: installkernel's names in /boot, and vmlinuz / vmlinuz.old links that follow
the default and the previous kernel (grub builds on it); on a machine whose boot loader
needs one (its `arch` table in data/layouts.toml: ppc64le's petitboot), an entry file
naming the plain kernels too."""

from __future__ import annotations

import os
from typing import Any

from distkernel.target.install.layouts.base import (
    KernelFiles,
    Layout,
    Placement,
    Shared,
    boot_text,
    group_default,
    on_partition,
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
    if entry := arch_entry(files.arch):
        p.entry = target.fmt(entry["path"], files.release)
    return p


def arch_entry(arch: str) -> dict[str, Any] | None:
    """The boot entry file ARCH's boot loader reads (data/layouts.toml), if it needs one."""
    entry: dict[str, Any] | None = spec("plain").get("arch", {}).get(arch, {}).get("entry")
    return entry


def _seen_from_boot(target: Target, rel: str) -> str:
    """REL as the boot loader sees it: from /boot's own filesystem when it is one."""
    return on_partition(rel, target.boot if os.path.ismount(target.path(target.boot)) else ".")


def entry_text(target: Target, state: State, arch: str) -> bytes:
    e = arch_entry(arch)
    assert e is not None
    default, _ = group_default(state, ("plain",))
    kernels = [k for k in state.ordered() if k.layout == "plain" and k.arch == arch and k.bootable]
    kernels.sort(key=lambda k: k is not default)  # stable: default first, then newest first
    lines = [line.format(label=e["label"].format(release=kernels[0].release)) for line in e["header"]]
    for k in kernels:
        values = {
            "label": e["label"].format(release=k.release),
            "image": _seen_from_boot(target, k.image),
            "initrd": _seen_from_boot(target, k.initrd) if k.initrd else "",
            "cmdline": k.cmdline,
        }
        lines += [
            line.format(**values).rstrip()
            for line in e["kernel"]
            if not any(f"{{{key}}}" in line and not values[key] for key in ("initrd", "cmdline"))
        ]
    return boot_text(target.fmt(e["path"], ""), lines)


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
    for arch in sorted({k.arch for k in state.kernels.values() if k.layout == "plain" and k.bootable}):
        if entry := arch_entry(arch):
            out[target.fmt(entry["path"], "")] = Shared(data=entry_text(target, state, arch))
    return out


LAYOUT = Layout("plain", place, writes, shared)
