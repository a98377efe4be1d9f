"""A small Kconfig reader for explanations (not a resolver: `make olddefconfig` is).

It reads what an explanation needs from a kernel tree: symbols and their types,
prompts, `depends on`, `select`, `imply`, `default`, `range`, the `if` / `menu` /
`choice` blocks around them, and `source` with `$(SRCARCH)`. It parses Linux 6.1,
which Kconfiglib 14.1 cannot (the bare `modules` attribute, 5.13+)."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from distkernel.build.config import kexpr
from distkernel.build.config.kexpr import Expr

TYPES = ("bool", "tristate", "string", "int", "hex")
INDENT_RE = re.compile(r"^[ \t]*")
MACRO_RE = re.compile(r"\$\(([A-Za-z0-9_]+)\)")


@dataclass
class Cond:
    """A value or a symbol with its condition, where it was written."""

    target: Expr | str
    cond: Expr
    where: str


@dataclass
class Definition:
    """One `config`/`menuconfig` block (a symbol may be defined several times)."""

    name: str
    where: str  # file:line
    prompt: str | None = None
    prompt_cond: Expr = kexpr.Y
    depends: list[tuple[Expr, str]] = field(default_factory=list)  # own `depends on`, with file:line
    context: list[tuple[Expr, str]] = field(default_factory=list)  # enclosing if/menu/choice deps
    visible: Expr = kexpr.Y  # enclosing menus' `visible if`
    defaults: list[Cond] = field(default_factory=list)
    selects: list[Cond] = field(default_factory=list)
    implies: list[Cond] = field(default_factory=list)
    ranges: list[Cond] = field(default_factory=list)
    choice: int | None = None  # index into Tree.choices

    def dependency(self) -> list[tuple[Expr, str]]:
        """Every term this definition depends on: blocks first, then its own."""
        return self.context + self.depends


@dataclass
class Choice:
    where: str
    prompt: str = ""
    depends: list[tuple[Expr, str]] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


@dataclass
class Symbol:
    name: str
    type: str = ""
    definitions: list[Definition] = field(default_factory=list)
    selected_by: list[Cond] = field(default_factory=list)  # target = the selecting symbol's name
    implied_by: list[Cond] = field(default_factory=list)

    @property
    def has_prompt(self) -> bool:
        return any(d.prompt is not None for d in self.definitions)


@dataclass
class Tree:
    symbols: dict[str, Symbol]
    choices: list[Choice]
    files: int


@dataclass
class _Block:
    kind: str  # if, menu, choice
    where: str
    depends: list[tuple[Expr, str]] = field(default_factory=list)
    visible: list[Expr] = field(default_factory=list)
    choice: int | None = None


class _Reader:
    def __init__(self, top: Path, env: dict[str, str]):
        self.top, self.env = top, env
        self.symbols: dict[str, Symbol] = {}
        self.choices: list[Choice] = []
        self.stack: list[_Block] = []
        self.files = 0

    def read(self, path: Path) -> None:
        self.files += 1
        rel = os.path.relpath(path, self.top)
        lines = path.read_text(errors="replace").splitlines()
        current: Definition | Choice | _Block | None = None
        i = 0
        while i < len(lines):
            number, line = i + 1, lines[i]
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i]
            i += 1
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            word, _, rest = stripped.replace("\t", " ").partition(" ")
            rest = rest.strip()
            where = f"{rel}:{number}"
            if word in ("help", "---help---"):
                i = self._skip_help(lines, i)
            elif word in ("config", "menuconfig"):
                current = self._definition(rest, where)
            elif word == "choice":
                self.choices.append(Choice(where))
                block = _Block("choice", where, choice=len(self.choices) - 1)
                self.stack.append(block)
                current = self.choices[-1]
            elif word in ("menu", "if"):
                block = _Block(word, where)
                if word == "if":
                    block.depends.append((kexpr.parse(rest), f"if-block {where}"))
                self.stack.append(block)
                current = block
            elif word in ("endmenu", "endif", "endchoice"):
                if self.stack:
                    self.stack.pop()
                current = None
            elif word in ("source", "rsource", "osource", "orsource"):
                self._source(word, rest, path)
                current = None
            elif word in ("comment", "mainmenu"):
                current = None
            elif current is not None:
                self._attribute(current, word, rest, where)

    def _skip_help(self, lines: list[str], i: int) -> int:
        indent = None
        while i < len(lines):
            line = lines[i].expandtabs()
            if line.strip():
                width = len(INDENT_RE.match(line).group(0))  # type: ignore[union-attr]
                if indent is None:
                    indent = width
                elif width < indent:
                    break
            i += 1
        return i

    def _source(self, word: str, rest: str, path: Path) -> None:
        ref = MACRO_RE.sub(lambda m: self.env.get(m.group(1), m.group(0)), rest.strip().strip('"'))
        if "$(" in ref:
            return
        base = path.parent if word.startswith(("r", "or")) else self.top
        target = base / ref
        if target.is_file():
            self.read(target)

    def _definition(self, name: str, where: str) -> Definition:
        d = Definition(name, where)
        for block in self.stack:
            d.context += block.depends
            d.visible = kexpr.and_all([d.visible, *block.visible]) if block.visible else d.visible
            if block.choice is not None:
                d.choice = block.choice
        if d.choice is not None:
            self.choices[d.choice].members.append(name)
        self.symbols.setdefault(name, Symbol(name)).definitions.append(d)
        return d

    def _attribute(self, current: Definition | Choice | _Block, word: str, rest: str, where: str) -> None:
        if word == "depends" and rest.startswith("on"):
            term = (kexpr.parse(rest[2:]), where)
            if isinstance(current, (Definition, Choice)):
                current.depends.append(term)
            if isinstance(current, Choice):
                self.stack[-1].depends.append((term[0], f"choice {where}"))
            elif isinstance(current, _Block):
                current.depends.append((term[0], f"menu {where}"))
            return
        if isinstance(current, _Block):
            if word == "visible" and rest.startswith("if"):
                current.visible.append(kexpr.parse(rest[2:]))
            return
        if isinstance(current, Choice):
            if word == "prompt" or (word in TYPES and rest):
                current.prompt = kexpr.split_if(rest)[0].strip('"')
            return
        self._config_attribute(current, word, rest, where)

    def _config_attribute(self, d: Definition, word: str, rest: str, where: str) -> None:
        sym = self.symbols[d.name]
        value, cond_text = kexpr.split_if(rest)
        cond = kexpr.parse(cond_text) if cond_text else kexpr.Y
        if word in TYPES or word in ("def_bool", "def_tristate"):
            sym.type = sym.type or (word if word in TYPES else word[4:])
            if word in TYPES and value:
                d.prompt, d.prompt_cond = value.strip('"'), cond
            elif value:
                d.defaults.append(Cond(kexpr.parse(value), cond, where))
        elif word == "prompt":
            d.prompt, d.prompt_cond = value.strip('"'), cond
        elif word == "default":
            d.defaults.append(Cond(kexpr.parse(value), cond, where))
        elif word in ("select", "imply"):
            target = self.symbols.setdefault(value, Symbol(value))
            (d.selects if word == "select" else d.implies).append(Cond(value, cond, where))
            (target.selected_by if word == "select" else target.implied_by).append(Cond(d.name, cond, where))
        elif word == "range":
            d.ranges.append(Cond(value, cond, where))


def tree_env(srcarch: str) -> dict[str, str]:
    return {"SRCARCH": srcarch, "ARCH": srcarch, "HEADER_ARCH": srcarch}


def parse_tree(top: Path, srcarch: str) -> Tree:
    """Read the whole Kconfig tree of `top` as `make ARCH=...` sees it."""
    reader = _Reader(top, tree_env(srcarch))
    reader.read(top / "Kconfig")
    symbols = {n: s for n, s in reader.symbols.items() if s.definitions}
    return Tree(symbols, reader.choices, reader.files)


@functools.cache
def load_tree(top: Path, srcarch: str) -> Tree:
    """The parsed tree, once per process (a parse of Linux 6.1 takes about a second)."""
    return parse_tree(top, srcarch)
