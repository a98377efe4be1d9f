"""Assemble a .config: base -> fragments -> explicit options (later wins), resolved
by the kernel's own `make olddefconfig`, then compared with what was asked."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

from distkernel import cache
from distkernel.config.report import ConfigReport, build_report
from distkernel.config.values import Origin, Setting, merge_into, parse_fragment, read_config
from distkernel.errors import UserError
from distkernel.kbuild import Kbuild
from distkernel.recipe import Recipe

# Targets that produce a whole, reproducible .config on their own.
BASE_TARGETS = ("tinyconfig", "defconfig", "allnoconfig", "allyesconfig", "allmodconfig", "alldefconfig")


@dataclass(frozen=True)
class ResolvedConfig:
    path: Path  # the effective .config (in the build dir)
    sha256: str
    kernel_release: str
    report: ConfigReport


def base_targets(kb: Kbuild) -> list[str]:
    configs = kb.source.path / "arch" / kb.arch.srcarch / "configs"
    named = sorted(p.name for p in configs.glob("*_defconfig")) if configs.is_dir() else []
    return [*BASE_TARGETS, *named]


def requested_settings(recipe: Recipe) -> list[Setting]:
    """Every value the recipe asks for, in the order they apply."""
    out: list[Setting] = []
    for fragment in recipe.config.fragments:
        out += parse_fragment(fragment, recipe.display(fragment))
    if recipe.kernel.localversion:
        value = '"' + recipe.kernel.localversion + '"'
        out.append(
            Setting(
                "CONFIG_LOCALVERSION", value, Origin(recipe.display(recipe.path), recipe.line("kernel", "localversion"))
            )
        )
    for symbol, value in recipe.config.options.items():
        out.append(Setting(symbol, value, Origin(recipe.display(recipe.path), recipe.line("config", "options"))))
    return out


def _apply_base(recipe: Recipe, kb: Kbuild, log: Path) -> None:
    base = recipe.config.base
    config = kb.build_dir / ".config"
    if base.startswith("file:"):
        kb.build_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile((recipe.folder / base[5:]).resolve(), config)
        return
    targets = base_targets(kb)
    if base not in targets:
        close = difflib.get_close_matches(base, targets, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserError(
            f"{recipe.line_of('config', 'base')}: config.base: `{base}` is not a config target of this "
            f"{kb.arch.name} tree; {hint}use one of {', '.join(BASE_TARGETS)}, an arch *_defconfig, or file:PATH"
        )
    kb.make(base, log=log)


def kernel_release(version: str, effective: dict[str, str]) -> str:
    return version + effective.get("CONFIG_LOCALVERSION", '""').strip('"')


def resolve_config(recipe: Recipe, kb: Kbuild, log: Path, requested: list[Setting] | None = None) -> ResolvedConfig:
    """Write the effective .config into the build dir and report on it."""
    requested = requested_settings(recipe) if requested is None else requested
    _apply_base(recipe, kb, log)
    config = kb.build_dir / ".config"
    base_values = read_config(config)
    merged = {s.symbol: s.value for s in requested}
    config.write_text(merge_into(config.read_text(), merged))
    kb.make("olddefconfig", log=log)
    effective = read_config(config)
    report = build_report(recipe.config.base, base_values, requested, effective)
    return ResolvedConfig(config, cache.sha256_file(config), kernel_release(kb.source.version, effective), report)
