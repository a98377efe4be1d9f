"""What `install` calls between depmod and the initramfs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModuleOutcome:
    name: str
    version: str
    ok: bool
    required: bool
    in_initramfs: tuple[str, ...]  # module names (without .ko) the initramfs must carry
    log: Path | None = None
    reason: str = ""


def build_for_kernel(root: Path, release: str, headers: Path, modules_dir: Path) -> list[ModuleOutcome]:
    """Build every module registered in ROOT against HEADERS (that kernel's headers tree),
    install them into MODULES_DIR (the staged lib/modules/RELEASE) and return one outcome
    each. Never raises for a module that fails to build."""
    return []
