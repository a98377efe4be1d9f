"""The whole config a build starts from: a savedconfig, else the base (a Kbuild target,
`file:PATH`, `debian[:FLAVOUR]` from the installed linux-config package, or `running`,
the config of the target root's running kernel)."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.config.savedconfig import Saved, find_saved
from distkernel.build.config.values import read_text_any
from distkernel.build.recipe import Recipe
from distkernel.core.errors import UserError
from distkernel.core.tools import install_command

# Targets that produce a whole, reproducible .config on their own.
BASE_TARGETS = ("tinyconfig", "defconfig", "allnoconfig", "allyesconfig", "allmodconfig", "alldefconfig")


@dataclass(frozen=True)
class Start:
    label: str  # how the report names the base ("base tinyconfig", "savedconfig config-6.1.190")
    notes: tuple[str, ...] = ()
    saved: Saved | None = None


def base_targets(kb: Kbuild) -> list[str]:
    configs = kb.source.path / "arch" / kb.arch.srcarch / "configs"
    named = sorted(p.name for p in configs.glob("*_defconfig")) if configs.is_dir() else []
    return [*BASE_TARGETS, *named]


def debian_config(arch: str, base: str) -> Path:
    table = tomllib.loads(resources.files("distkernel.build.data").joinpath("debian-configs.toml").read_text())
    if arch not in table:
        raise UserError(f"config.base: no Debian config known for arch {arch} (known: {', '.join(table)})")
    entry = table[arch]
    flavour = base.partition(":")[2] or str(entry["flavour"])
    featureset, _, flavour = flavour.rpartition("_") if "_" in flavour else ("none", "", flavour)
    folder = Path(entry["dir"])
    path = folder / str(entry["pattern"]).format(featureset=featureset, flavour=flavour)
    if not path.is_file():
        have = sorted(p.name for p in folder.glob("config.*")) if folder.is_dir() else []
        hint = f" (present: {', '.join(have)})" if have else f"; install it: {install_command(['linux-config-6.1'])}"
        raise UserError(f"config.base: `{base}` needs {path}, which is missing{hint}")
    return path


def running_config(root: Path) -> tuple[Path, list[str]]:
    """The running kernel's config as seen from `root`: /proc/config.gz (only for /),
    else boot/config-$(uname -r), else the newest boot/config-* with a note."""
    release = os.uname().release
    candidates = ([Path("/proc/config.gz")] if root == Path("/") else []) + [root / "boot" / f"config-{release}"]
    for path in candidates:
        if path.is_file():
            return path, []
    others = sorted((root / "boot").glob("config-*"), key=lambda p: p.stat().st_mtime)
    if others:
        return others[-1], [f"no config for the running release {release} under {root}: using {others[-1]}"]
    raise UserError(
        f"config.base: `running` found no config of the running kernel under {root} "
        f'(/proc/config.gz needs CONFIG_IKCONFIG_PROC; or boot/config-{release}); use base = "file:PATH"'
    )


def _copy_whole(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(read_text_any(source))


def start_config(recipe: Recipe, kb: Kbuild, root: Path, log: Path) -> Start:
    """Write the starting .config into the build dir."""
    spec, config = recipe.config, kb.build_dir / ".config"
    notes: list[str] = []
    if spec.savedconfig is not None:
        saved = find_saved(spec.savedconfig, kb.source.version)
        if saved:
            _copy_whole(saved.path, config)
            if not saved.exact:
                notes.append(f"no config-{kb.source.version} in {spec.savedconfig}: brought {saved.path.name} forward")
            return Start(f"savedconfig {saved.path.name}", tuple(notes), saved)
        if not spec.base:
            raise UserError(
                f"{recipe.line_of('config', 'savedconfig')}: config.savedconfig: {spec.savedconfig} holds no "
                f"config-{kb.source.version} nor an earlier config-<version>; save your config there "
                f"(cp .config {spec.savedconfig}/config-{kb.source.version}) or set config.base"
            )
        notes.append(f"no savedconfig for {kb.source.version} in {spec.savedconfig}: using base {spec.base}")
    base = spec.base
    if recipe.base_file is not None:
        _copy_whole(recipe.base_file, config)
    elif base == "debian" or base.startswith("debian:"):
        path = debian_config(recipe.kernel.arch, base)
        _copy_whole(path, config)
        base = f"{base} ({path.name})"
    elif base == "running":
        path, more = running_config(root)
        _copy_whole(path, config)
        notes += more
        base = f"running ({path})"
    else:
        targets = base_targets(kb)
        if base not in targets:
            close = difflib.get_close_matches(base, targets, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UserError(
                f"{recipe.line_of('config', 'base')}: config.base: `{base}` is not a config target of this "
                f"{kb.arch.name} tree; {hint}use one of {', '.join(BASE_TARGETS)}, an arch *_defconfig, "
                f"debian, running or file:PATH"
            )
        kb.make(base, log=log)
    return Start(f"base {base}", tuple(notes))
