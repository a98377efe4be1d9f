"""`distkernel probe`: what a client machine needs from its kernel, as host.json
(loaded modules, modaliases of present devices and the modules they resolve to, arch,
running release, root filesystem type, firmware type, installed module sizes)."""

from __future__ import annotations

import os
import platform
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

FORMAT = 1


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def loaded_modules(root: Path) -> list[str]:
    return sorted({line.split()[0] for line in _read(root / "proc/modules").splitlines() if line.strip()})


def modaliases(root: Path) -> list[str]:
    found = set()
    for dirpath, _, files in os.walk(root / "sys/devices"):
        if "modalias" in files:
            alias = _read(Path(dirpath) / "modalias").strip()
            if alias:
                found.add(alias)
    return sorted(found)


def resolve_aliases(aliases: list[str], alias_file: Path) -> list[str]:
    """Module names whose modules.alias patterns match a device's modalias."""
    patterns = []
    for line in _read(alias_file).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "alias":
            patterns.append((re.split(r"[*?\[]", parts[1], maxsplit=1)[0], parts[1], parts[2]))
    return sorted({m for a in aliases for prefix, p, m in patterns if a.startswith(prefix) and fnmatchcase(a, p)})


def module_sizes(moddir: Path) -> dict[str, int]:
    sizes = {}
    for path in moddir.rglob("*.ko*") if moddir.is_dir() else ():
        sizes[path.name.split(".ko")[0].replace("-", "_")] = path.stat().st_size
    return dict(sorted(sizes.items()))


def root_fs(root: Path) -> str:
    """The type of the filesystem mounted last on / (the one in effect)."""
    mounts = _read(root / "proc/self/mounts") or _read(root / "proc/mounts")
    types = [p[2] for p in (line.split() for line in mounts.splitlines()) if len(p) >= 3 and p[1] == "/"]
    return types[-1] if types else ""


def probe(root: Path = Path("/")) -> dict[str, Any]:
    release = os.uname().release
    moddir = root / "lib/modules" / release
    aliases = modaliases(root)
    return {
        "format": FORMAT,
        "arch": platform.machine(),
        "kernel_release": release,
        "root_fs": root_fs(root),
        "firmware": "efi" if (root / "sys/firmware/efi").is_dir() else "bios",
        "loaded_modules": loaded_modules(root),
        "modaliases": aliases,
        "alias_modules": resolve_aliases(aliases, moddir / "modules.alias"),
        "module_sizes": module_sizes(moddir),
    }
