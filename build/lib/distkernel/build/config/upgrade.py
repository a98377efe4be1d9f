"""`config upgrade`: bring an old .config to another kernel source with olddefconfig,
and say what changed: the new questions (options with a prompt, what `make
listnewconfig` lists) with the values chosen, apart from the new derived symbols (no
prompt: nobody is asked, a user need not look), options gone, values olddefconfig
changed, each with why. `config diff`: any two configs side by side."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.config.explain import Explainer
from distkernel.build.config.kconfig import Tree, load_tree
from distkernel.build.config.values import read_config, read_text_any
from distkernel.build.recipe import SOURCE_KINDS, ConfigSpec, KernelSpec, Recipe
from distkernel.build.source import prepare_source
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.core.errors import UserError
from distkernel.core.progress import current, step


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


NEW_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=")


@dataclass(frozen=True)
class Upgrade:
    version: str
    config: Path  # the upgraded .config
    diff: ConfigDiff
    gone: dict[str, str]  # options of the old config this kernel does not have
    why: dict[str, str]  # option -> why olddefconfig dropped or changed it
    questions: dict[str, tuple[str, str]]  # new options with a prompt -> (value chosen, prompt)
    derived: dict[str, str]  # new symbols without a prompt (set, not asked) -> value

    @property
    def dropped(self) -> dict[str, str]:
        return {k: v for k, v in self.diff.removed.items() if k not in self.gone}

    def rows(self, derived: bool = False) -> list[tuple[str, str, str, str, str]]:
        """option, old, new, what, why: the questions first, derived symbols only on request."""
        rows = [(k, "-", v, "new question", prompt) for k, (v, prompt) in self.questions.items()]
        rows += [(k, v, "-", "gone from this kernel", "") for k, v in self.gone.items()]
        rows += [(k, v, "-", "removed", self.why.get(k, "")) for k, v in self.dropped.items()]
        rows += [(k, a, b, "changed", self.why.get(k, "")) for k, (a, b) in self.diff.changed.items()]
        if derived:
            rows += [(k, "-", v, "derived", "") for k, v in self.derived.items()]
        return rows

    def summary(self, derived: bool = False) -> str:
        hint = "" if derived or not self.derived else " (--derived lists them)"
        return (
            f"{_count(self.questions, 'new question')}, {_count(self.derived, 'new derived symbol')}{hint}, "
            f"{len(self.gone)} gone, {len(self.dropped)} dropped, {len(self.diff.changed)} changed"
        )

    def to_json(self) -> dict[str, Any]:
        d = self.diff
        return {
            "version": self.version,
            "config": str(self.config),
            "new": d.added,
            "questions": {k: {"value": v, "prompt": prompt} for k, (v, prompt) in self.questions.items()},
            "derived": self.derived,
            "removed": self.gone,
            "changed": {k: {"from": a, "to": b, "why": self.why.get(k)} for k, (a, b) in d.changed.items()},
            "dropped": {k: {"from": v, "why": self.why.get(k)} for k, v in self.dropped.items()},
        }


def _count(items: dict[str, Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


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
    progress = current()
    step(progress, "upgrade", "source")
    tree = prepare_source(recipe)
    work = cache.cache_dir("build") / f"upgrade-{arch}-{tree.key[:16]}"
    kb = Kbuild(tree, work / "obj", get_arch(arch), ccache=ccache_usable(True))
    with cache.locked(f"build-{work.name}"):
        kb.build_dir.mkdir(parents=True, exist_ok=True)
        (kb.build_dir / ".config").write_text(read_text_any(old))
        log = work / log_name
        log.write_text("")
        step(progress, "upgrade", "listnewconfig")
        listed = [m.group(1) for line in kb.make("listnewconfig", log=log) if (m := NEW_LINE.match(line))]
        step(progress, "upgrade", "olddefconfig")
        kb.make("olddefconfig", log=log)
        out = work / f"config-{tree.version}"
        shutil.copyfile(kb.build_dir / ".config", out)
    before, after = read_config(old), read_config(out)
    diff = diff_values(before, after)
    step(progress, "upgrade", "explain")
    ktree = load_tree(tree.path, kb.arch.srcarch)
    gone = {k: v for k, v in diff.removed.items() if k.removeprefix("CONFIG_") not in ktree.symbols}
    ex = Explainer(ktree, after, {})
    why = {k: ex.explain(k, v) for k, v in diff.removed.items() if k not in gone}
    why |= {k: ex.explain(k, a) for k, (a, _) in diff.changed.items()}
    questions = {k: (after.get(k, "n"), _prompt(ktree, k)) for k in listed}
    derived = {k: v for k, v in after.items() if k not in before and k not in questions and v != "n"}
    return Upgrade(tree.version, out, diff, gone, why, questions, derived)


def _prompt(tree: Tree, symbol: str) -> str:
    sym = tree.symbols.get(symbol.removeprefix("CONFIG_"))
    return next((d.prompt for d in sym.definitions if d.prompt), "") if sym else ""
