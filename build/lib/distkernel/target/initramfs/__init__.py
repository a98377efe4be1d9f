"""Initramfs backends: builtin (ours: newc cpio + busybox /init), dracut, none."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from distkernel.core.cache import atomic_write_bytes
from distkernel.core.errors import UserError
from distkernel.target.initramfs import builtin, dracut
from distkernel.target.initramfs.compress import kernel_caps
from distkernel.target.kernel_install import read_install_conf

BACKENDS = ("builtin", "dracut", "none")


@dataclass(frozen=True)
class InitramfsSpec:
    release: str  # kernel release
    modules_dir: Path  # .../lib/modules/RELEASE inside the (staged) root, after depmod
    kernel_config: Path | None = None  # picks compression: zstd if CONFIG_RD_ZSTD, else gzip, else none
    modules: tuple[str, ...] = ()  # extra modules to carry (with deps, softdeps, firmware)
    firmware_dirs: tuple[Path, ...] = ()  # default: ROOT/lib/firmware, ROOT/usr/lib/firmware
    cmdline_root: bool = True  # include what mounting root= needs (storage + filesystem modules)
    init: str | None = None  # replaces the default /init script
    extra_files: dict[str, bytes] = field(default_factory=dict)  # image path -> content (0755 if #!)


@dataclass(frozen=True)
class InitramfsResult:
    backend: str  # builtin | dracut | none
    path: Path | None  # None for backend "none"
    bytes: int
    seconds: float
    compression: str
    modules: tuple[str, ...]  # module names inside
    missing_firmware: tuple[str, ...] = ()  # named by a carried module, found in no firmware dir


def make_initramfs(backend: str, spec: InitramfsSpec, out: Path, *, root: Path) -> InitramfsResult:
    """Write OUT atomically (stage + rename). UserError for bad input, ToolError when dracut fails."""
    if backend not in BACKENDS:
        raise UserError(f"unknown initramfs backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    start = time.monotonic()
    if backend == "none":
        return InitramfsResult("none", None, 0, 0.0, "none", ())
    caps = kernel_caps(spec.kernel_config)
    if not caps.initrd:
        raise UserError(f"{spec.kernel_config}: the kernel has no CONFIG_BLK_DEV_INITRD; use --initramfs none")
    if backend == "builtin":
        image, chosen, missing = builtin.build(spec, root, caps)
        atomic_write_bytes(out, image)
        modules, size = chosen.modules, len(image)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        try:
            modules, missing = dracut.build(spec, stage, root, caps), []
            os.replace(stage, out)
        finally:
            stage.unlink(missing_ok=True)
        size = out.stat().st_size
    return InitramfsResult(backend, out, size, time.monotonic() - start, caps.compression, modules, tuple(missing))


def default_backend(root: Path) -> str:
    """`initrd_generator=` of the root's install.conf (read as kernel-install reads it),
    else "builtin"; `distkernel` names the builtin generator too."""
    conf = read_install_conf(root)
    value = conf.get("initrd_generator")
    if value is None:
        return "builtin"
    value = "builtin" if value == "distkernel" else value
    if value not in BACKENDS:
        raise UserError(
            f"{conf.where('initrd_generator')}: initrd_generator={value} is not one distkernel runs; "
            f"set it to one of {', '.join(BACKENDS)} or pass --initramfs"
        )
    return value
