"""`config upgrade`: bring an old .config to another kernel source with olddefconfig,
and say what changed (new options with the values chosen, options gone, values
olddefconfig changed, each with why). `config diff`: any two configs side by side."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.config.explain import Explainer
from distkernel.build.config.kconfig import load_tree
from distkernel.build.config.values import read_config, read_text_any
from distkernel.build.recipe import SOURCE_KINDS, ConfigSpec, KernelSpec, Recipe
from distkernel.build.source import prepare_source
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.core.errors import UserError


@dataclass(frozen=True)
class ConfigDiff:
    added: dict[str, str]  # only in B
    removed: dict[str, str]  # only in A
    changed: dict[str, tuple[str, str]]  # A value, B value

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": {k: {"from": a, "to": b} for k, (a, b) in self.changed.items()},
        }


def diff_values(a: dict[str, str], b: dict[str, str]) -> ConfigDiff:
    """Absent and `is not set` are the same n for bool/tristate options."""
    added = {k: v for k, v in b.items() if k not in a and v != "n"}
    removed = {k: v for k, v in a.items() if k not in b and v != "n"}
    changed = {k: (a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]}
    return ConfigDiff(dict(sorted(added.items())), dict(sorted(removed.items())), dict(sorted(changed.items())))


def diff_files(a: Path, b: Path) -> ConfigDiff:
    for p in (a, b):
        if not p.is_file():
            raise UserError(f"{p}: no such config file")
    return diff_values(read_config(a), read_config(b))


@dataclass(frozen=True)
class Upgrade:
    version: str
    config: Path  # the upgraded .config
    diff: ConfigDiff
    gone: dict[str, str]  # options of the old config this kernel does not have
    why: dict[str, str]  # option -> why olddefconfig dropped or changed it

    def to_json(self) -> dict[str, Any]:
        d = self.diff
        return {
            "version": self.version,
            "config": str(self.config),
            "new": d.added,
            "removed": self.gone,
            "changed": {k: {"from": a, "to": b, "why": self.why.get(k)} for k, (a, b) in d.changed.items()},
            "dropped": {k: {"from": v, "why": self.why.get(k)} for k, v in d.removed.items() if k not in self.gone},
        }


def _recipe(old: Path, source: str, arch: str) -> Recipe:
    kind, _, ref = source.partition(":")
    if kind not in ("debian", "dir") or not ref:
        kinds = "debian:NAME or dir:PATH" if kind not in SOURCE_KINDS else f"debian:NAME or dir:PATH (not {kind}:)"
        raise UserError(f"--source: `{source}` must be {kinds}")
    if kind == "dir":
        path = Path(ref).resolve()
        if not (path / "Makefile").is_file():
            raise UserError(f"--source: {path} is not a kernel source tree")
        source = f"dir:{path}"
    return Recipe(old, "", KernelSpec(name="upgrade", source=source, arch=arch), ConfigSpec(base=f"file:{old}"))


def upgrade(old: Path, source: str, arch: str, log_name: str = "upgrade.log") -> Upgrade:
    if not old.is_file():
        raise UserError(f"{old}: no such config file")
    recipe = _recipe(old.resolve(), source, arch)
    tree = prepare_source(recipe)
    work = cache.cache_dir("build") / f"upgrade-{arch}-{tree.key[:16]}"
    kb = Kbuild(tree, work / "obj", get_arch(arch), ccache=ccache_usable(True))
    with cache.locked(f"build-{work.name}"):
        kb.build_dir.mkdir(parents=True, exist_ok=True)
        (kb.build_dir / ".config").write_text(read_text_any(old))
        log = work / log_name
        log.write_text("")
        kb.make("olddefconfig", log=log)
        out = work / f"config-{tree.version}"
        shutil.copyfile(kb.build_dir / ".config", out)
    before, after = read_config(old), read_config(out)
    diff = diff_values(before, after)
    ktree = load_tree(tree.path, kb.arch.srcarch)
    gone = {k: v for k, v in diff.removed.items() if k.removeprefix("CONFIG_") not in ktree.symbols}
    ex = Explainer(ktree, after, {})
    why = {k: ex.explain(k, v) for k, v in diff.removed.items() if k not in gone}
    why |= {k: ex.explain(k, a) for k, (a, _) in diff.changed.items()}
    return Upgrade(tree.version, out, diff, gone, why)
