"""What `install` calls between depmod and the initramfs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distkernel.target.extmod import registry
from distkernel.target.extmod.kernel import Kernel

# The builder (and the Kbuild driver and module signing under it) loads only for a root
# that has modules to build: most installs have none.
if TYPE_CHECKING:
    from distkernel.target.extmod.builder import ModuleOutcome

__all__ = ["blocks_default", "build_for_kernel", "initramfs_modules"]


def build_for_kernel(root: Path, release: str, headers: Path, modules_dir: Path) -> list[ModuleOutcome]:
    """Build every module registered in ROOT against HEADERS (that kernel's headers tree),
    install them into MODULES_DIR (the staged lib/modules/RELEASE) and return one outcome
    each; the caller runs depmod again when any has files. Never raises for a module that
    fails to build."""
    with registry.locked(root):
        modules = registry.registered(root)
        if not modules:
            return []
        from distkernel.target.extmod.builder import Job, build_all

        kernel = Kernel.from_headers(release, headers, modules_dir)
        return build_all(root, [Job(m, kernel) for m in modules])


def blocks_default(outcomes: Sequence[ModuleOutcome]) -> bool:
    """A --required module failed: the kernel is installed but must not become the default."""
    return any(o.required and not o.ok for o in outcomes)


def initramfs_modules(root: Path, release: str) -> tuple[str, ...]:
    """Names of the registered --initramfs modules currently built for RELEASE."""
    names: list[str] = []
    for module in registry.registered(root):
        status = registry.load_status(root, module.name, release)
        if module.initramfs and status is not None and status.status == "built":
            names.extend(status.modules)
    return tuple(names)
