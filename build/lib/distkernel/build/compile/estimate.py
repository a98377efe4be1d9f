"""How many objects a first build of a .config compiles, read from the tree's Kbuild
files: the denominator of the compile progress before any build of the config has
counted it (kernel.py remembers the real count after).

From the top-level Kbuild (and the arch Makefile's core/libs/drivers directories) it
follows every `obj-y`/`obj-m`/`obj-$(CONFIG_X)` and `lib-...` entry the .config enables:
a directory is entered, a composite object (`foo-y := a.o b.o`) counts its enabled
parts, a module one more (its `.mod.o`). `ifdef`/`ifeq` on a CONFIG_ value are
followed; other conditions count both sides. Objects outside obj-y (the boot image,
the vDSO, objtool) are an estimate per directory kind: ESTIMATED_EXTRA. The result is
an estimate, meant to be within a fifth of the real count."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ASSIGN_RE = re.compile(
    r"^(?P<var>[A-Za-z0-9_./-]*?)-(?P<cond>y|m|objs|\$\(CONFIG_[A-Za-z0-9_]+\)|"
    r"\$\(subst m,y,\$\(CONFIG_[A-Za-z0-9_]+\)\))\s*(?P<op>:=|\+=|\?=|=)\s*(?P<value>.*)$"
)
REF_RE = re.compile(r"^\$\(([A-Za-z0-9_./-]+)-(y|m)\)$")  # $(mmu-y): another list of the same file
CONFIG_RE = re.compile(r"\$\(CONFIG_([A-Za-z0-9_]+)\)")
IF_RE = re.compile(r"^(ifdef|ifndef|ifeq|ifneq)\b\s*(.*)$")
# Objects compiled outside the obj-y tree the estimate reads: the boot image, the vDSO
# and realmode blobs, objtool and the modpost helper (counted on an x86_64 build).
ESTIMATED_EXTRA = 80


@dataclass
class _Dir:
    # (name, y|m|n) -> tokens: `foo-$(CONFIG_X) += a.o` with X=m is ("foo", "m") -> [a.o]
    vars: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def entries(self, name: str) -> list[tuple[str, str]]:
        """(token, level) of `name-y`, `name-m`, `name-objs`, with $(other-y) expanded."""
        out: list[tuple[str, str]] = []
        for level in ("y", "m"):
            for token in self.vars.get((name, level), []):
                ref = REF_RE.match(token)
                if ref and ref.group(1) != name:
                    out += [(t, level) for t in self.vars.get((ref.group(1), ref.group(2)), [])]
                elif "$(" not in token:
                    out.append((token, level))
        return out


class Estimator:
    def __init__(self, source: Path, srcarch: str, config: dict[str, str]):
        self.source, self.srcarch, self.config = source, srcarch, config
        self.seen: set[Path] = set()

    def level(self, cond: str) -> str:
        if cond in ("y", "objs"):
            return "y"
        if cond == "m":
            return "m"
        m = CONFIG_RE.search(cond)
        value = self.config.get(f"CONFIG_{m.group(1)}", "n") if m else "n"
        if cond.startswith("$(subst m,y,") and value == "m":
            return "y"
        return value if value in ("y", "m") else "n"

    def _condition(self, kind: str, rest: str) -> bool | None:
        """An `ifdef CONFIG_X` / `ifeq ($(CONFIG_X),y)`; None when it is not about the
        config (both sides count)."""
        if kind in ("ifdef", "ifndef"):
            name = rest.strip()
            if not name.startswith("CONFIG_"):
                return None
            on = self.config.get(name, "n") not in ("n", "")
            return on if kind == "ifdef" else not on
        m = re.fullmatch(r"\(\s*\$\((CONFIG_[A-Za-z0-9_]+)\)\s*,\s*(\w*)\s*\)", rest.strip())
        if not m:
            return None
        value = self.config.get(m.group(1), "")
        value = "" if value == "n" else value
        return (value == m.group(2)) == (kind == "ifeq")

    def read(self, path: Path) -> _Dir:
        d = _Dir()
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return d
        active: list[bool | None] = []  # per open `if`: its value, None when unknown
        i = 0
        while i < len(lines):
            line = lines[i]
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i]
            i += 1
            line = line.split("#", 1)[0].strip()
            if m := IF_RE.match(line):
                active.append(self._condition(m.group(1), m.group(2)))
            elif line.startswith("else") and active:
                known = active[-1] is not None and line == "else"
                active[-1] = (not active[-1]) if known else None
            elif line.startswith("endif") and active:
                active.pop()
            elif all(a is not False for a in active) and (m := ASSIGN_RE.match(line)):
                value = m.group("value").replace("$(SRCARCH)", self.srcarch)
                key = (m.group("var"), self.level(m.group("cond")))
                if m.group("op") in (":=", "="):
                    d.vars[key] = []
                d.vars.setdefault(key, []).extend(value.split())
        return d

    def directory(self, rel: str, module: bool) -> int:
        path = self.source / rel
        if path in self.seen or not path.is_dir():
            return 0
        self.seen.add(path)
        kbuild = path / "Kbuild" if (path / "Kbuild").is_file() else path / "Makefile"
        d = self.read(kbuild)
        total = 0
        for var in ("obj", "lib", "subdir"):
            for token, level in d.entries(var):
                as_module = module or level == "m"
                if token.endswith("/") or var == "subdir":
                    total += self.directory(f"{rel}/{token.rstrip('/')}", as_module)
                elif token.endswith(".o"):
                    total += self._object(d, token[:-2], set()) + (1 if as_module and var == "obj" else 0)
        return total

    def _object(self, d: _Dir, name: str, stack: set[str]) -> int:
        """A composite object counts its enabled parts, a plain one itself."""
        parts = [t for t, _ in d.entries(name) if t.endswith(".o")]
        if not parts or name in stack:
            return 1
        return sum(self._object(d, t[:-2], stack | {name}) for t in parts)

    def total(self) -> int:
        count = self.directory(".", False)
        for makefile in (self.source / "Makefile", self.source / "arch" / self.srcarch / "Makefile"):
            d = self.read(makefile)
            for var in ("core", "libs", "drivers"):
                for token, _ in d.entries(var):
                    if token.endswith("/"):
                        count += self.directory(token.rstrip("/"), False)
        return count + ESTIMATED_EXTRA


def config_values(path: Path) -> dict[str, str]:
    """The `CONFIG_X=value` lines of a .config (config/values.py reads them fully; the
    compile stage must not import the config stage, which builds on it)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    return {m.group(1): m.group(2) for m in re.finditer(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$", text, re.M)}


def estimate_objects(source: Path, srcarch: str, config: dict[str, str]) -> int:
    return Estimator(source, srcarch, config).total()
