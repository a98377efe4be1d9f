"""The dracut backend: the real dracut, with the kernel modules (and firmware) of the
root's release, the dracut modules that mount root= (data/initramfs/modules.toml), and
the root's own dracut configuration when it has one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from distkernel.core import cache
from distkernel.core.progress import Progress, elapsed
from distkernel.core.tools import require, run
from distkernel.target.initramfs.builtin import module_classes, select_modules
from distkernel.target.initramfs.closure import module_name, read_index
from distkernel.target.initramfs.compress import KernelCaps, decompress
from distkernel.target.initramfs.cpio import members

if TYPE_CHECKING:
    from distkernel.target.initramfs import InitramfsSpec

FLAGS = {"zstd": "--zstd", "gzip": "--gzip", "none": "--no-compress"}


def carried_modules(image: bytes) -> tuple[str, ...]:
    return tuple(sorted({module_name(p) for p, _, _ in members(decompress(image)) if ".ko" in p.rsplit("/", 1)[-1]}))


def build(
    spec: InitramfsSpec, out: Path, root: Path, caps: KernelCaps, progress: Progress | None = None
) -> tuple[str, ...]:
    """Write the image to OUT (a staging path); return the modules inside. A failure is a
    ToolError naming dracut's log. Dracut says nothing useful while it works (tens of
    seconds): the progress shows it running and for how long (core/progress.current()
    unless one is given)."""
    dracut = require("dracut")
    chosen = select_modules(read_index(spec.modules_dir), spec)
    log = cache.cache_dir("logs") / f"dracut-{spec.release}.log"
    log.unlink(missing_ok=True)
    fw_dirs = spec.firmware_dirs or (root / "lib/firmware", root / "usr/lib/firmware")
    conf, confdir = root / "etc/dracut.conf", root / "etc/dracut.conf.d"
    with tempfile.TemporaryDirectory(prefix="dracut-", dir=out.parent) as tmp:
        # Never this host's /etc/dracut.conf*: the root's, else none.
        empty = Path(tmp) / "conf.d"
        empty.mkdir()
        argv = [
            dracut, "--force", "--reproducible", "--no-early-microcode", "--no-hostonly-cmdline",
            "--hostonly" if root.resolve() == Path("/") else "--no-hostonly",
            "--kmoddir", spec.modules_dir, "--fwdir", ":".join(map(str, fw_dirs)),
            "--conf", conf if conf.is_file() else os.devnull, "--confdir", confdir if confdir.is_dir() else empty,
            "--tmpdir", tmp, "--modules", " ".join(module_classes()["dracut"]["modules"]),
            FLAGS[caps.compression],
        ]  # fmt: skip
        if chosen.modules:
            argv += ["--add-drivers", " ".join(chosen.modules)]
        for path, content in spec.extra_files.items():
            src = Path(tmp) / "extra" / path.strip("/")
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(content)
            src.chmod(0o755 if content.startswith(b"#!") else 0o644)
            argv += ["--include", src, "/" + path.strip("/")]
        if spec.init is not None:
            init = Path(tmp) / "init"
            init.write_text(spec.init)
            init.chmod(0o755)
            argv += ["--include", init, "/init"]
        with elapsed("dracut", progress):
            run([*argv, out, spec.release], log=log, what="dracut")
    return carried_modules(out.read_bytes())
