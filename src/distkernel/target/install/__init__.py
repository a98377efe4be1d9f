"""Install a package into a root, transactionally: verify, modules + depmod, external
modules, initramfs, boot layout (plain, grub, bls, uki), plugins, state and retention.

The library entry points other stages use:

    install_package(package, root, *, layout=None, initramfs=None, cmdline=None, keep=3) -> Installation
    load_state(root) -> State             (finishes or undoes an interrupted transaction first)
    refresh_initramfs(root, release, extra_modules=None) -> Installation
    update_module_records(root, release, changed=(), removed=()) -> KernelRecord
    add_headers(root, release, headers_part) -> KernelRecord   (a binhost kernel's headers, placed later)
    hold(root) -> Held                    (the root's lock across several of the two above, as
                                           Held.refresh_initramfs / Held.update_modules: `modules` uses it)
    remove_kernel(root, release) / rollback(root) / mark_good(root, release=None) -> State
    recover(root) -> (what was settled, remaining problems)

They are imported on first use (PEP 562), so that importing a light submodule such as
`distkernel.target.install.target` (the CLI does, at start-up) does not load every stage.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distkernel.target.install.api import FromBinhost, Installation, install_package
    from distkernel.target.install.headers import add_headers
    from distkernel.target.install.manage import load_state, mark_good, recover, remove_kernel, rollback
    from distkernel.target.install.refresh import Held, hold, refresh_initramfs, update_module_records
    from distkernel.target.install.state import KernelRecord, ModuleRecord, PlacedFile, State

_WHERE = {
    "FromBinhost": "api",
    "add_headers": "headers",
    "Installation": "api",
    "install_package": "api",
    "load_state": "manage",
    "mark_good": "manage",
    "recover": "manage",
    "remove_kernel": "manage",
    "rollback": "manage",
    "refresh_initramfs": "refresh",
    "update_module_records": "refresh",
    "hold": "refresh",
    "Held": "refresh",
    "KernelRecord": "state",
    "ModuleRecord": "state",
    "PlacedFile": "state",
    "State": "state",
}
__all__ = [
    "FromBinhost",
    "Held",
    "Installation",
    "KernelRecord",
    "ModuleRecord",
    "PlacedFile",
    "State",
    "add_headers",
    "hold",
    "install_package",
    "load_state",
    "mark_good",
    "recover",
    "refresh_initramfs",
    "remove_kernel",
    "rollback",
    "update_module_records",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
