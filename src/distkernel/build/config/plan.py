"""The settings that make a requested value take: walk the Kconfig dependencies down
from the request and collect, in dependency order, every value that must be added.

Read from the same tree and effective values as the explanation. A plan is a guess
the kernel's own kconfig then checks (`make olddefconfig`), so it is kept simple: a
symbol is set through its prompt when it has one, else through the default or the
`select` that gives it; of the ways to satisfy `A || B`, the one needing the fewest
changes wins; `!A` is satisfied by setting A=n where nothing selects A."""

from __future__ import annotations

from dataclasses import dataclass

from distkernel.build.config import kexpr
from distkernel.build.config.kconfig import Definition, Symbol, Tree
from distkernel.build.config.kexpr import TRI, Evaluator, Expr

# Never suggested as a fix: it builds drivers for hardware the machine cannot have.
AVOID = frozenset({"COMPILE_TEST"})
MAX_DEPTH = 24
BUDGET = 20000  # symbol visits per plan: a bound on `select` fan-out, not a real limit

# A plan under construction: symbol name -> (value, the symbol it is needed by), in the
# order they were added. Copied, never changed in place: `||` tries each way.
State = dict[str, tuple[str, str | None]]

NEGATE = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


@dataclass(frozen=True)
class Step:
    name: str  # without CONFIG_
    value: str  # as written in a .config: y, m, n, a number, a quoted string
    needed_by: str | None = None  # the symbol whose dependency asked for it; None for the request

    def line(self) -> str:
        return f"CONFIG_{self.name}={self.value}"


def negate(e: Expr) -> Expr:
    kind = e[0]
    if kind == "not":
        return e[1]  # type: ignore[no-any-return]
    if kind == "and":
        return ("or", negate(e[1]), negate(e[2]))
    if kind == "or":
        return ("and", negate(e[1]), negate(e[2]))
    if kind == "cmp":
        return ("cmp", NEGATE[e[1]], e[2], e[3])
    return ("not", e)


class Planner:
    def __init__(self, tree: Tree, effective: dict[str, str]):
        self.tree, self.effective = tree, effective
        self.visits = 0

    # -- reading a hypothetical config --------------------------------------------

    def raw(self, name: str, state: State) -> str | None:
        if name in state:
            return state[name][0]
        return self.effective.get(f"CONFIG_{name}")

    def level(self, name: str, state: State) -> int:
        return TRI.get(self.raw(name, state) or "n", 0)

    def evaluator(self, state: State) -> Evaluator:
        return Evaluator(lambda n: self.raw(n, state), self.level("MODULES", state) == 2)

    def tri(self, e: Expr, state: State) -> int:
        return self.evaluator(state).tri(e)

    # -- the plan ---------------------------------------------------------------------

    def plan(self, name: str, value: str) -> list[Step] | None:
        """The steps (the request last) that let `name` take `value`; None when no way
        was found."""
        self.visits = 0
        sym = self.tree.symbols.get(name)
        if sym is None:
            return None
        if sym.type in ("bool", "tristate") and TRI[value] < self.level(name, {}):
            state = self._shown(sym, value)
        elif sym.type in ("bool", "tristate"):
            state = self._reach(name, TRI[value], {}, (), exact=True)
        else:
            state = self._set_value(sym, value, {}, ())
        if state is None:
            return None
        return [Step(n, v, by) for n, (v, by) in state.items() if not self._stays_hidden(n, v, state)]

    def cost(self, e: Expr, want: int, of: str) -> int | None:
        """How many values must be added for `e` to reach `want` (None: no way found)."""
        self.visits = 0
        state = self._satisfy(e, want, {}, (of,))
        return None if state is None else len(state)

    def _shown(self, sym: Symbol, value: str) -> State | None:
        """A lower value than the one a hidden prompt's default gives: show the prompt."""
        if any(min(self.level(str(c.target), {}), self.tri(c.cond, {})) > TRI[value] for c in sym.selected_by):
            return None
        for d in sym.definitions:
            got = self._all([d.prompt_cond, d.visible], 1, {}, (sym.name,)) if d.prompt is not None else None
            if got is not None:
                return self._assign(sym.name, value, got, ())
        return None

    def _assign(self, name: str, value: str, state: State, by: tuple[str, ...]) -> State | None:
        if name in state:
            old = state[name][0]
            if old == value:
                return state
            if not (old in ("m", "y") and value == "y"):
                return None  # the plan needs it otherwise
        return {**state, name: (value, by[-1] if by else None)}

    def _reach(self, name: str, want: int, state: State, by: tuple[str, ...], exact: bool = False) -> State | None:
        """`name` at `want` or above (exactly `want` for the request itself)."""
        sym = self.tree.symbols.get(name)
        if sym is None or name in AVOID or name in by or len(by) > MAX_DEPTH or self.visits > BUDGET:
            return None
        self.visits += 1
        if sym.type not in ("bool", "tristate"):
            return None
        if sym.type == "bool" and want:
            want = 2  # kconfig turns a bool's m into y: its dependencies need only be m
        have = self.level(name, state)
        if have == want or (have > want and not exact):
            return state
        if want == 0:
            return self._lower(name, 0, state, by)
        if want == 1:
            modules = self._reach("MODULES", 2, state, (*by, name))
            if modules is None:
                return None
            state = modules
        via = [self._prompted(sym, d, want, state, by) for d in sym.definitions if d.prompt is not None]
        if not any(via):  # no prompt, or none that can show: a default or a select
            via += [self._defaulted(sym, d, want, state, by) for d in sym.definitions]
            if not any(via):
                via += [self._selected(sym, want, state, by)]
        return min((s for s in via if s is not None), key=len, default=None)

    def _all(self, exprs: list[Expr], want: int, state: State | None, by: tuple[str, ...]) -> State | None:
        for e in exprs:
            if state is None:
                return None
            state = self._satisfy(e, want, state, by)
        return state

    @staticmethod
    def _dep_level(sym: Symbol, want: int) -> int:
        return 1 if sym.type == "bool" else want

    def _prompted(self, sym: Symbol, d: Definition, want: int, state: State, by: tuple[str, ...]) -> State | None:
        needs = [e for e, _ in d.dependency()] + [d.prompt_cond, d.visible]
        got = self._all(needs, self._dep_level(sym, want), state, (*by, sym.name))
        return None if got is None else self._assign(sym.name, kexpr.TRI_NAME[want], got, by)

    def _defaulted(self, sym: Symbol, d: Definition, want: int, state: State, by: tuple[str, ...]) -> State | None:
        """A symbol without a prompt that follows its `default VALUE if COND`."""
        below, level = (*by, sym.name), self._dep_level(sym, want)
        got = self._all([e for e, _ in d.dependency()], level, state, below)
        for c in d.defaults if got is not None else ():
            assert not isinstance(c.target, str)
            given = self._satisfy(kexpr.and_all([c.target, c.cond]), level, got, below)  # type: ignore[arg-type]
            if given is not None:
                return given
        return None

    def _selected(self, sym: Symbol, want: int, state: State, by: tuple[str, ...]) -> State | None:
        options = []
        for c in sym.selected_by:
            cond = kexpr.and_all([("sym", str(c.target)), c.cond])
            options.append(self._satisfy(cond, want, state, (*by, sym.name)))
        return min((s for s in options if s is not None), key=len, default=None)

    def _lower(self, name: str, most: int, state: State, by: tuple[str, ...]) -> State | None:
        """`name` at `most` or below, when nothing that stays on selects it: through its
        own prompt, or for a symbol without one, by turning its dependencies off."""
        sym = self.tree.symbols.get(name)
        if sym is None or (self.level(name, state) <= most and not self._unsettled(name, state)):
            return state
        if sym.type not in ("bool", "tristate") or name in by or len(by) > MAX_DEPTH or self.visits > BUDGET:
            return None
        self.visits += 1
        most = 0 if sym.type == "bool" else most  # a bool has no m
        for c in sym.selected_by:
            if min(self.level(str(c.target), state), self.tri(c.cond, state)) > most:
                return None
        if not sym.has_prompt:
            off = [negate(kexpr.and_all([e for e, _ in d.dependency()])) for d in sym.definitions]
            return self._satisfy(kexpr.and_all(off), 2 - most, state, (*by, name))
        if self._unsettled(name, state):  # shown only later in the plan: set it now
            return self._assign(name, kexpr.TRI_NAME[most], state, by)
        ev = self.evaluator(state)
        shown = any(d.prompt is not None and min(ev.tri(d.prompt_cond), ev.tri(d.visible)) > 0 for d in sym.definitions)
        return self._assign(name, kexpr.TRI_NAME[most], state, by) if shown else None

    # -- symbols the plan makes visible ------------------------------------------
    # A symbol absent from the .config (its dependencies unmet) reads as n, but once the
    # plan meets them it takes its default: `visible if !I2C_HELPER_AUTO` holds today
    # and not after I2C=m. A negation of such a symbol is met by setting it to n (or,
    # without a prompt, by keeping its dependencies off).

    def _unsettled(self, name: str, state: State) -> bool:
        """Absent, and with a default that may turn it on once its dependencies hold."""
        sym = self.tree.symbols.get(name)
        if sym is None or name in state or f"CONFIG_{name}" in self.effective:
            return False
        return any(c.target != ("const", "n") for d in sym.definitions for c in d.defaults)

    def _negates_unsettled(self, e: Expr, state: State) -> bool:
        kind = e[0]
        if kind == "not":
            return (e[1][0] == "sym" and self._unsettled(e[1][1], state)) or self._negates_unsettled(e[1], state)
        if kind in ("and", "or"):
            return self._negates_unsettled(e[1], state) or self._negates_unsettled(e[2], state)
        if kind == "cmp" and e[2][0] == "sym" and e[3] in (("const", "n"), ("const", "y")):
            return (e[1], e[3][1]) in (("=", "n"), ("!=", "y")) and self._unsettled(e[2][1], state)
        return False

    def _stays_hidden(self, name: str, value: str, state: State) -> bool:
        """An `=n` the plan added for a symbol it never shows: noise in the fix."""
        if value != "n" or f"CONFIG_{name}" in self.effective:
            return False
        ev = self.evaluator(state)
        defs = [d for d in self.tree.symbols[name].definitions if d.prompt is not None]
        return all(min([ev.tri(d.prompt_cond), *(ev.tri(e) for e, _ in d.dependency())]) == 0 for d in defs)

    def _satisfy(self, e: Expr, want: int, state: State, by: tuple[str, ...]) -> State | None:
        """Make expression `e` evaluate to `want` or above."""
        if self.tri(e, state) >= want and not self._negates_unsettled(e, state):
            return state
        kind = e[0]
        if kind == "sym":
            return self._reach(e[1], want, state, by)
        if kind == "and":
            left = self._satisfy(e[1], want, state, by)
            return None if left is None else self._satisfy(e[2], want, left, by)
        if kind == "or":
            ways = [self._satisfy(d, want, state, by) for d in kexpr.disjuncts(e)]
            return min((s for s in ways if s is not None), key=len, default=None)
        if kind == "not":
            inner = e[1]
            if inner[0] == "sym":
                return self._lower(inner[1], 2 - want, state, by)
            pushed = negate(inner)
            if pushed == e:  # nothing to push the negation into (`!y`, say): no way
                return None
            return self._satisfy(pushed, want, state, by)
        if kind == "cmp":
            return self._compare(e, state, by)
        if kind == "const" and e[1] == "m" and want == 1:
            return self._reach("MODULES", 2, state, by)
        return None

    def _compare(self, e: Expr, state: State, by: tuple[str, ...]) -> State | None:
        """`SYM = y|m|n` and `SYM != n` style comparisons; numbers are not planned."""
        op, a, b = e[1], e[2], e[3]
        if a[0] == "const" and b[0] == "sym":
            a, b = b, a
        if a[0] != "sym" or b[0] != "const" or b[1] not in TRI:
            return None
        target = TRI[b[1]]
        if op == "=":
            return self._lower(a[1], 0, state, by) if target == 0 else self._reach(a[1], target, state, by, True)
        if op == "!=" and target == 0:
            return self._reach(a[1], 1, state, by)
        if op == "!=" and target == 2:
            return self._lower(a[1], 1, state, by)
        return None

    # -- values of other types ----------------------------------------------------

    def _set_value(self, sym: Symbol, value: str, state: State, by: tuple[str, ...]) -> State | None:
        """A string/int/hex: its prompt made visible, or the default that gives `value`."""
        for d in sym.definitions:
            got = self._prompted(sym, d, 1, state, by) if d.prompt is not None else None
            if got is not None:
                return {**{k: v for k, v in got.items() if k != sym.name}, sym.name: (value, None)}
        for d in sym.definitions:
            for c in d.defaults:
                assert not isinstance(c.target, str)
                if self.evaluator(state).text(c.target) != value.strip('"'):
                    continue
                needs = [*(e for e, _ in d.dependency()), c.cond]
                got = self._all(needs, 1, state, (*by, sym.name))
                if got is not None:
                    return {**got, sym.name: (value, None)}
        return None
