"""Host tailoring: keep as modules only what a probed host needs (localmodconfig
semantics, run by the kernel's own streamline_config.pl), and count what it saved."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from distkernel.build.compile.kbuild import Kbuild
from distkernel.core.errors import ToolError, UserError
from distkernel.core.tools import call

OBJ_RE = re.compile(r"^obj-\$\((CONFIG_[A-Za-z0-9_]+)\)\s*[+:]?=\s*(.*)$")
FS_MODULES = {"vfat": "vfat", "ext2": "ext4", "ext3": "ext4", "fuseblk": "fuse", "nfs4": "nfsv4"}


@dataclass(frozen=True)
class Host:
    path: Path
    arch: str
    root_fs: str
    modules: frozenset[str]  # loaded or matching a device's modalias
    sizes: dict[str, int]


def load_probe(path: Path) -> Host:
    try:
        doc = json.loads(path.read_text())
        mods = {m.replace("-", "_") for m in [*doc["loaded_modules"], *doc.get("alias_modules", [])]}
        return Host(
            path, str(doc["arch"]), str(doc.get("root_fs", "")), frozenset(mods), dict(doc.get("module_sizes", {}))
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(
            f"{path}: config.tailor: not a `distkernel probe` host.json ({e}); "
            f"run `distkernel probe -o host.json` on the host"
        ) from None


@cache
def always_keep() -> tuple[str, ...]:
    doc = tomllib.loads(resources.files("distkernel.build.data").joinpath("tailor.toml").read_text())
    return tuple(doc["always_keep"])


def needed(host: Host) -> set[str]:
    fs = FS_MODULES.get(host.root_fs, host.root_fs)
    return {*host.modules, *always_keep(), *([fs] if fs else [])}


def localmodconfig(kb: Kbuild, host: Host, log: Path) -> None:
    """Turn off every `=m` the host does not need. The recipe's features and options
    survive: the caller merges every requested value again afterwards."""
    lsmod = kb.build_dir / "distkernel-lsmod"
    lsmod.write_text("Module Size Used by\n" + "".join(f"{m} 0 0\n" for m in sorted(needed(host))))
    script = kb.source.path / "scripts/kconfig/streamline_config.pl"
    env = {
        **kb.env(),
        "LSMOD": str(lsmod),
        "ARCH": kb.arch.kbuild,
        "SRCARCH": kb.arch.srcarch,
        "objtree": str(kb.build_dir),
    }
    tmp = kb.build_dir / ".tmp.config"
    with open(tmp, "w") as out:
        done = call(
            ["perl", script, "--localmodconfig", kb.source.path, "Kconfig"],
            ok=None,
            cwd=kb.build_dir,
            env=env,
            stdout=out,
        )
    with open(log, "a") as logf:
        logf.write(done.output)
    if done.code != 0:
        raise ToolError("streamline_config.pl (localmodconfig) failed", log=log)
    os.replace(tmp, kb.build_dir / ".config")


@cache
def module_map(top: Path) -> dict[str, frozenset[str]]:
    """CONFIG symbol -> the modules it builds, from `obj-$(CONFIG_X) += name.o` lines."""
    out: dict[str, set[str]] = {}
    for dirpath, dirnames, files in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("Documentation", "tools", "scripts")]
        for name in ("Makefile", "Kbuild"):
            if name in files:
                text = Path(dirpath, name).read_text(errors="replace").replace("\\\n", " ")
                for line in text.splitlines():
                    m = OBJ_RE.match(line.strip())
                    if m:
                        mods = {w[:-2].replace("-", "_") for w in m.group(2).split() if w.endswith(".o")}
                        out.setdefault(m.group(1), set()).update(mods)
    return {k: frozenset(v) for k, v in out.items()}


def modules_of(top: Path, values: dict[str, str]) -> set[str]:
    mapping = module_map(top)
    return {mod for sym, v in values.items() if v == "m" for mod in mapping.get(sym, ())}


def measure(kb: Kbuild, host: Host, before: dict[str, str], after: dict[str, str]) -> dict[str, int]:
    """Modules built before and after tailoring; size saved by the host's own module sizes
    (a build-free estimate: the probe records the sizes of the host's installed modules)."""
    was, now = modules_of(kb.source.path, before), modules_of(kb.source.path, after)
    dropped = was - now
    return {
        "modules_before": len(was),
        "modules_after": len(now),
        "modules_dropped": len(dropped),
        "size_saved_bytes": sum(host.sizes.get(m, 0) for m in dropped),
        "size_known_for": sum(1 for m in dropped if m in host.sizes),
    }


def note(host: Host, n: dict[str, int]) -> str:
    size = (
        f", {n['size_saved_bytes'] / 2**20:.1f} MiB saved by the host's module sizes ({n['size_known_for']} known)"
        if n["size_known_for"]
        else ", size saved unknown (the probe holds no module sizes)"
    )
    return (
        f"tailored to {host.path.name}: {n['modules_after']} modules instead of {n['modules_before']} "
        f"({n['modules_dropped']} fewer{size})"
    )
