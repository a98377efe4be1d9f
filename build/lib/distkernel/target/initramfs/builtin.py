"""The builtin backend: busybox-static, our /init, the module closure for root= plus the
requested modules, their firmware, written as one deterministic newc cpio."""

from __future__ import annotations

import struct
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distkernel.core.errors import ToolError, UserError
from distkernel.core.tools import install_command, known_tools
from distkernel.target.initramfs.closure import (
    ModuleIndex,
    find_firmware,
    firmware_of,
    plain_path,
    read_index,
    read_module,
)
from distkernel.target.initramfs.compress import KernelCaps, compress
from distkernel.target.initramfs.cpio import Archive
from distkernel.target.initramfs.elf import EM_NAMES, Elf

if TYPE_CHECKING:
    from distkernel.target.initramfs import InitramfsSpec

LOAD_LIST = "etc/initramfs/load"


@cache
def module_classes() -> dict[str, Any]:
    return tomllib.loads(resources.files("distkernel.target.data").joinpath("initramfs/modules.toml").read_text())


def default_init() -> str:
    return resources.files("distkernel.target.data").joinpath("initramfs/init.sh").read_text()


def _usable_busybox(path: Path, arch: str | None) -> tuple[bytes | None, str]:
    """The binary if it is a static ELF for ARCH, else why not."""
    try:
        data = path.read_bytes()
    except OSError:
        return None, "missing"
    elf = Elf.parse(data)
    if elf is None:
        return None, "not an ELF binary"
    try:
        static = elf.is_static
    except struct.error:  # program headers beyond the file
        return None, "a truncated ELF binary"
    if not static:
        return None, "dynamically linked"
    machine = EM_NAMES.get(elf.machine, str(elf.machine))
    if arch and machine != arch:
        return None, f"built for {machine}, the kernel is {arch}"
    return data, "ok"


def find_busybox(root: Path, arch: str | None) -> bytes:
    """The root's own static busybox when it has one, else the host's busybox-static."""
    for candidate in (root / "usr/bin/busybox", root / "bin/busybox"):
        data, _ = _usable_busybox(candidate, arch)
        if data is not None:
            return data
    host = Path(next(t.check for t in known_tools() if t.name == "busybox"))
    data, why = _usable_busybox(host, arch)
    if data is not None:
        return data
    fix = install_command(["busybox-static"])
    if why == "missing" or why == "dynamically linked":
        raise ToolError(f"the builtin initramfs needs a static busybox; {host} is {why}: {fix}")
    raise UserError(f"no static busybox for {arch}: host {host} is {why}; put one at {root}/usr/bin/busybox")


@dataclass(frozen=True)
class Selection:
    modules: tuple[str, ...]  # every module carried, in load order
    always: tuple[str, ...]  # what /init loads at start (the rest by modalias)


def select_modules(index: ModuleIndex, spec: InitramfsSpec) -> Selection:
    requested = [m.replace("-", "_") for m in spec.modules]
    if unknown := index.unknown(requested):
        raise UserError(
            f"module(s) {', '.join(unknown)} not found in {index.dir}/modules.dep (nor built in); "
            "check the names with `modinfo -k RELEASE NAME` or drop them"
        )
    always = [real for m in requested for real in index.resolve(m)]
    wanted = list(always)
    if spec.cmdline_root:
        for cls in module_classes()["classes"].values():
            names = index.matching(cls["globs"])
            wanted += names
            if cls["load"] == "always":
                always += names
    return Selection(index.closure(wanted), index.closure(always))


def _index_files(index: ModuleIndex, carried: tuple[str, ...]) -> dict[str, str]:
    """depmod's text indexes cut down to the carried modules (busybox modprobe reads them)."""
    keep = set(carried)
    dep = [
        f"{plain_path(index.paths[m])}: {' '.join(plain_path(index.paths[d]) for d in index.deps[m])}".rstrip()
        for m in sorted(carried, key=lambda m: index.paths[m])
    ]
    alias = [line for line, name in index.alias_lines if name in keep]
    builtin = sorted(f"{n}.ko" for n in index.builtin)
    return {"modules.dep": "\n".join(dep), "modules.alias": "\n".join(alias), "modules.builtin": "\n".join(builtin)}


def build(spec: InitramfsSpec, root: Path, caps: KernelCaps) -> tuple[bytes, Selection, list[str]]:
    """The compressed image, what it carries, and the firmware named but not found."""
    if spec.init is None and not caps.scripts:
        raise UserError(f"{spec.kernel_config}: the builtin /init is a script and needs CONFIG_BINFMT_SCRIPT=y")
    index = read_index(spec.modules_dir)
    chosen = select_modules(index, spec)
    image = Archive()
    for d in ("dev", "proc", "sys", "run", "sysroot", "tmp"):
        image.dir(d)
    image.chardev("dev/console", 5, 1)
    image.file("bin/busybox", find_busybox(root, caps.arch), 0o755)
    image.file("init", (spec.init if spec.init is not None else default_init()).encode(), 0o755)
    mods = f"lib/modules/{spec.release}"
    carried = {m: read_module(index.dir / index.paths[m]) for m in chosen.modules}  # each read once
    if index.paths:
        for m, data in carried.items():
            image.file(f"{mods}/{plain_path(index.paths[m])}", data)
        for name, text in _index_files(index, chosen.modules).items():
            image.file(f"{mods}/{name}", (text + "\n").encode() if text else b"")
        image.file(LOAD_LIST, "".join(f"{m}\n" for m in chosen.always).encode())
    fw_dirs = spec.firmware_dirs or (root / "lib/firmware", root / "usr/lib/firmware")
    found, missing = find_firmware(firmware_of(carried.values()), fw_dirs)
    for name, fw in found.items():
        image.file(f"lib/firmware/{name}", fw.read_bytes())
    for where, content in spec.extra_files.items():
        image.file(where, content, 0o755 if content.startswith(b"#!") else 0o644)
    return compress(image.to_bytes(), caps.compression), chosen, missing
