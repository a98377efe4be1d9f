"""Boot layouts: where a kernel's boot files go (per kernel), and the files that name
the default one (shared: links, grub.cfg, loader.conf). A layout is one module here
defining `LAYOUT = Layout(...)` (see base.py) plus its table in data/layouts.toml; the
registry and the list of names are derived from the modules found."""

from __future__ import annotations

import importlib
import pkgutil

from distkernel.core.errors import UserError
from distkernel.target.install import counting
from distkernel.target.install.layouts.base import KernelFiles, Layout, Placement, Shared, spec
from distkernel.target.install.state import State
from distkernel.target.install.target import Target, layouts_data
from distkernel.target.install.transaction import Transaction, owned_paths, refuse_foreign

__all__ = [
    "LAYOUTS",
    "REGISTRY",
    "KernelFiles",
    "Layout",
    "Placement",
    "Shared",
    "choose",
    "get",
    "place",
    "refuse_foreign_files",
    "spec",
]


def _discover() -> dict[str, Layout]:
    found: dict[str, Layout] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        layout = importlib.import_module(f"{__name__}.{info.name}").LAYOUT
        assert isinstance(layout, Layout) and layout.name == info.name, info.name
        found[layout.name] = layout
    return found


REGISTRY = _discover()
LAYOUTS = tuple(REGISTRY)


def get(name: str) -> Layout:
    """The layout called NAME (a recorded one: state.json names it)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown layout {name!r}; use one of: {', '.join(LAYOUTS)}") from None


def place(layout: str, tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    return get(layout).place(tx, target, files)


def refuse_foreign_files(target: Target, layout: str, release: str, state: State) -> None:
    """Before anything is written: every file LAYOUT would create or replace for RELEASE
    is absent or distkernel's own (the transaction checks each write again)."""
    owned = owned_paths(state)
    for k in state.kernels.values():  # a boot entry the boot loader renamed is still ours
        owned.update((now, f) for f in k.files if not f.link and (now := counting.find(target.root, f.path)))
    for written in get(layout).writes(target, release):
        # A counted entry also takes its plain name at its first good boot: a foreign entry
        # for the release under that name would be a second menu entry, then be replaced.
        for rel in dict.fromkeys((written, counting.plain(written))):
            refuse_foreign(target.root, target.root / rel, rel, owned)


def shared_files(target: Target, state: State) -> dict[str, Shared]:
    """Every shared file the layouts in use want, from the state after the change."""
    out: dict[str, Shared] = {}
    for layout in REGISTRY.values():
        out.update(layout.shared(target, state))
    return out


def choose(target: Target, requested: str | None) -> str:
    """--layout, else install.conf's `layout=`, else the first detection rule that
    matches the root, else the fallback."""
    if requested:
        if requested not in REGISTRY:
            raise UserError(f"--layout: unknown layout {requested!r}; use one of: {', '.join(LAYOUTS)}")
        return requested
    data = layouts_data()
    install_conf = target.install_conf()
    conf = install_conf.get("layout")
    if conf:
        aliases: dict[str, str] = data["aliases"]
        if conf not in aliases:
            raise UserError(
                f"{install_conf.where('layout')}: layout={conf} is not supported; "
                f"use one of: {', '.join(sorted(aliases))}"
            )
        return aliases[conf]
    for rule in data["detect"]:
        if any(next(target.root.glob(target.fmt(p, "")), None) is not None for p in rule["exists"]):
            return str(rule["layout"])
    return str(data["fallback"])
