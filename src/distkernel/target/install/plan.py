"""`install --dry-run` and `remove --dry-run`: the plan, read from the package's metadata,
the root and the layout table, with nothing written (what `kernel-install inspect` gives).
Paths are the ones the layout's table names; the install itself may add external
modules' files and hooks' output, which a plan cannot know before they run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distkernel.build.package.reader import read_metadata
from distkernel.target.initramfs import default_backend
from distkernel.target.install import layouts, markgood
from distkernel.target.install.layouts import spec
from distkernel.target.install.layouts.base import counted_path
from distkernel.target.install.retention import to_prune
from distkernel.target.install.state import KernelRecord, State
from distkernel.target.install.target import Target

# The layout table's keys that name a file of the kernel, and of the root (shared).
KERNEL_FILES = ("image", "initrd", "system_map", "config", "entry")
SHARED_FILES = ("default_link", "previous_link", "config", "loader_conf")


@dataclass(frozen=True)
class Plan:
    action: str  # install | remove
    root: str
    release: str
    layout: str
    place: list[str] = field(default_factory=list)  # files and folders written (install) ...
    remove: list[str] = field(default_factory=list)  # ... or deleted
    rewrite: list[str] = field(default_factory=list)  # shared files that name the default
    details: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": True, **self.__dict__}


def _layout_files(target: Target, layout: str, release: str, initramfs: str) -> tuple[list[str], list[str]]:
    table = spec(layout)
    base = spec(table["base"]) if "base" in table else {}
    own = [
        counted_path(target.fmt(t[key], release), t) if key == t.get("counted") else target.fmt(t[key], release)
        for t in (base, table)
        for key in KERNEL_FILES
        if key in t and "{release}" in t[key] and not (key == "initrd" and initramfs == "none")
    ]
    shared = [
        target.fmt(t[key], "") for t in (base, table) for key in SHARED_FILES if key in t and "{release}" not in t[key]
    ]
    return own, sorted(set(shared))


def install_plan(
    package: Path,
    root: Path,
    layout: str | None,
    initramfs: str | None,
    cmdline: str | None,
    keep: int,
    *,
    headers: bool = True,
) -> Plan:
    root = root.resolve()
    target = Target.probe(root)
    meta = read_metadata(package)
    release = meta.kernel_release
    chosen = layouts.choose(target, layout)
    backend = initramfs or default_backend(root)
    from distkernel.target.install import load_state

    old = load_state(root)
    own, shared = _layout_files(target, chosen, release, backend)
    record = KernelRecord(
        release, chosen, meta.filename, meta.arch, old.next_seq, backend, "", target.modules_dir(release), ""
    )
    after = State({**old.kernels, release: record}, release, old.shared, old.next_seq + 1)
    pruned = to_prune(after, keep, is_host=target.is_host)
    # Shared files the table does not name: what the layout writes besides the kernel's
    # own (the /etc/grub.d script of a root with grub-mkconfig), the mark-good unit and
    # its link for a kernel on trial.
    extra = {*layouts.get(chosen).writes(target, release), *markgood.shared(target, after)} - {*own}
    shared = sorted({*shared, *extra})
    details = {
        "package": str(package),
        "initramfs": backend,
        "cmdline": cmdline if cmdline is not None else target.default_cmdline() or "-",
        "default": f"{release} (was {old.default or 'none'})",
        "reinstall": "yes" if release in old.kernels else "no",
        "headers": "yes" if headers else "no (no external modules to build; --with-headers places them)",
        "prune": ", ".join(pruned) or "-",
    }
    return Plan(
        "install",
        str(root),
        release,
        chosen,
        place=[*own, target.modules_dir(release) + "/", target.headers_dir(release) + "/"],
        remove=[f for r in pruned for f in _kernel_paths(old.kernels[r])],
        rewrite=shared,
        details=details,
    )


def _kernel_paths(k: KernelRecord) -> list[str]:
    return sorted({f.path for f in k.files} | {d + "/" for d in k.dirs} | {k.modules_dir + "/", k.headers_dir + "/"})


def remove_plan(root: Path, release: str, force: bool) -> Plan:
    from distkernel.target.install.manage import load_state, plan_remove

    k, after = plan_remove(root, release, keep_last=not force)
    before = load_state(root).default
    root = root.resolve()
    target = Target.probe(root)
    _, shared = _layout_files(target, k.layout, release, k.initramfs)
    return Plan(
        "remove",
        str(root),
        release,
        k.layout,
        remove=_kernel_paths(k),
        rewrite=shared,
        details={"default": f"{after.default or 'none'} (was {before or 'none'})"},
    )
