"""Kconfig expressions: parse `depends on` / `if` / `default` text into small tuples,
evaluate them against the effective values (n < m < y), and print them back."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

# An expression is a tuple: ("sym", NAME) | ("const", TEXT) | ("macro", TEXT) | ("not", E)
# | ("and", A, B) | ("or", A, B) | ("cmp", OP, A, B). Tuples pickle fast and compare by value.
Expr = tuple[Any, ...]
Y: Expr = ("const", "y")

TRI = {"n": 0, "m": 1, "y": 2}
TRI_NAME = ("n", "m", "y")
TOKEN_RE = re.compile(r'\s*(\$\(|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|&&|\|\||!=|<=|>=|[!()=<>]|[^\s()!=<>&|"\']+)')


def tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            break
        tok, pos = m.group(1), m.end()
        if tok.startswith("#"):  # a trailing comment
            break
        if tok == "$(":  # a preprocessor macro: keep it whole, it is opaque to us
            depth, start = 1, pos
            while pos < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[pos], 0)
                pos += 1
            tok = "$(" + text[start:pos]
        out.append(tok)
    return out


class _Parser:
    def __init__(self, toks: list[str]):
        self.toks, self.i = toks, 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expr(self) -> Expr:
        left = self.conj()
        while self.peek() == "||":
            self.take()
            left = ("or", left, self.conj())
        return left

    def conj(self) -> Expr:
        left = self.unary()
        while self.peek() == "&&":
            self.take()
            left = ("and", left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        if self.peek() == "(":
            self.take()
            inner = self.expr()
            if self.peek() == ")":
                self.take()
            return inner
        left = self.atom()
        if self.peek() in ("=", "!=", "<", "<=", ">", ">="):
            op = self.take()
            return ("cmp", op, left, self.atom())
        return left

    def atom(self) -> Expr:
        tok = self.take() if self.peek() is not None else "n"
        if tok[0] in "\"'":
            return ("const", tok[1:-1])
        if tok.startswith("$("):
            return ("macro", tok)
        if tok in TRI or re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", tok):
            return ("const", tok)
        return ("sym", tok)


def parse(text: str) -> Expr:
    return _Parser(tokens(text)).expr()


def split_if(text: str) -> tuple[str, str | None]:
    """`VALUE if COND` -> (VALUE, COND); the `if` outside quotes and macros."""
    text = text.replace("\t", " ")
    start = text.find(" if ")
    while start >= 0:
        before = text[:start]
        if before.count('"') % 2 == 0 and before.count("(") == before.count(")"):
            return before.strip(), text[start + 4 :].strip()
        start = text.find(" if ", start + 1)
    return text.strip(), None


def conjuncts(e: Expr) -> Iterator[Expr]:
    if e[0] == "and":
        yield from conjuncts(e[1])
        yield from conjuncts(e[2])
    else:
        yield e


def disjuncts(e: Expr) -> Iterator[Expr]:
    if e[0] == "or":
        yield from disjuncts(e[1])
        yield from disjuncts(e[2])
    else:
        yield e


def symbols(e: Expr) -> Iterator[str]:
    if e[0] == "sym":
        yield e[1]
    elif e[0] in ("not", "and", "or"):
        for part in e[1:]:
            yield from symbols(part)
    elif e[0] == "cmp":
        yield from symbols(e[2])
        yield from symbols(e[3])


def and_all(parts: list[Expr]) -> Expr:
    out: Expr = Y
    for p in parts:
        out = p if out == Y else ("and", out, p)
    return out


def to_text(e: Expr, top: bool = True) -> str:
    kind = e[0]
    if kind in ("sym", "const", "macro"):
        return str(e[1]) if kind != "const" or e[1] in TRI or e[1][:1].isdigit() else f'"{e[1]}"'
    if kind == "not":
        return "!" + to_text(e[1], False)
    if kind == "cmp":
        return f"{to_text(e[2], False)} {e[1]} {to_text(e[3], False)}"
    text = f" {'&&' if kind == 'and' else '||'} ".join(
        to_text(p, False) for p in (conjuncts(e) if kind == "and" else disjuncts(e))
    )
    return text if top else f"({text})"


class Evaluator:
    """Values of expressions over the effective config. `value(NAME)` gives the raw
    value ("y"/"m"/"n", a number or a string) or None when the symbol is unset."""

    def __init__(self, value: Callable[[str], str | None], modules: bool):
        self.value, self.modules = value, modules

    def tri(self, e: Expr) -> int:
        kind = e[0]
        if kind == "const":
            t = TRI.get(e[1], 0)
            return 0 if t == 1 and not self.modules else t
        if kind == "sym":
            return TRI.get(self.value(e[1]) or "n", 0)
        if kind == "not":
            return 2 - self.tri(e[1])
        if kind == "and":
            return min(self.tri(e[1]), self.tri(e[2]))
        if kind == "or":
            return max(self.tri(e[1]), self.tri(e[2]))
        if kind == "cmp":
            return 2 if self._compare(e[1], self.text(e[2]), self.text(e[3])) else 0
        return 2  # a macro ($(cc-option,...)) was already decided by make: assume it holds

    def text(self, e: Expr) -> str:
        if e[0] == "sym":
            v = self.value(e[1])
            return "n" if v is None else v.strip('"')
        return str(e[1]) if e[0] in ("const", "macro") else TRI_NAME[self.tri(e)]

    @staticmethod
    def _compare(op: str, a: str, b: str) -> bool:
        try:
            x: int | str = int(a, 0)
            y: int | str = int(b, 0)
        except ValueError:
            x, y = a, b
        return {
            "=": x == y,
            "!=": x != y,
            "<": x < y,  # type: ignore[operator]
            "<=": x <= y,  # type: ignore[operator]
            ">": x > y,  # type: ignore[operator]
            ">=": x >= y,  # type: ignore[operator]
        }[op]
