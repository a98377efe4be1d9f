"""Why a requested value did not take, read from the Kconfig tree of the same source
and the effective values: unmet dependencies (with the blocks around a symbol), hidden
prompts, choices, select/imply, `=m` on a bool, the value form of strings and numbers,
unknown names; and the fix: every value to add, down the whole dependency tree
(plan.py), in one line."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from distkernel.build.config import kexpr
from distkernel.build.config.kconfig import Definition, Symbol, Tree
from distkernel.build.config.kexpr import TRI, Evaluator, Expr
from distkernel.build.config.plan import AVOID, Planner, Step
from distkernel.build.config.values import Setting

# The value forms kconfig accepts for each type (scripts/kconfig/symbol.c sym_string_valid).
FORMS = {
    "int": (re.compile(r"-?[0-9]+"), "a decimal number"),
    "hex": (re.compile(r"(0[xX])?[0-9a-fA-F]+"), "a hex number"),
    "string": (re.compile(r'"(?:[^"\\]|\\.)*"'), "a quoted string"),
}


def _c(name: str) -> str:
    return f"CONFIG_{name}"


@dataclass(frozen=True)
class Explanation:
    text: str
    fix: tuple[str, ...] = ()  # `CONFIG_X=v` lines to add (the request itself not among them)


def fix_text(steps: list[Step]) -> str:
    """`fix: add CONFIG_A=y, CONFIG_B=y, then CONFIG_X=m takes`, and which of the added
    values are there for another added one (the levels further down)."""
    *added, request = steps
    text = f"fix: add {', '.join(s.line() for s in added)}, then {request.line()} takes"
    deeper: dict[str, list[str]] = {}
    for s in added:
        if s.needed_by and s.needed_by != request.name:
            deeper.setdefault(s.needed_by, []).append(s.line())
    if deeper:
        text += " (" + "; ".join(f"{_c(n)} needs {', '.join(lines)}" for n, lines in deeper.items()) + ")"
    return text


class Explainer:
    def __init__(self, tree: Tree, effective: dict[str, str], requested: dict[str, Setting]):
        self.tree, self.effective, self.requested = tree, effective, requested
        self.ev = Evaluator(lambda n: effective.get(_c(n)), effective.get("CONFIG_MODULES") == "y")
        self.planner = Planner(tree, effective)

    def value(self, name: str) -> str:
        return self.effective.get(_c(name), "n")

    def explain(self, symbol: str, want: str) -> str:
        return self.why(symbol, want).text

    def why(self, symbol: str, want: str) -> Explanation:
        name = symbol.removeprefix("CONFIG_")
        sym = self.tree.symbols.get(name)
        if sym is None:
            return Explanation(self._unknown(name))
        if sym.type in ("bool", "tristate"):
            if want not in TRI:
                return Explanation(f"{symbol} is a {sym.type}: use y{', m' if sym.type == 'tristate' else ''} or n")
            if want == "m" and sym.type == "bool":
                return Explanation(f"{symbol} is a bool: it cannot be m; ask for y (built in) or n")
            if TRI[want] < TRI.get(self.value(name), 0):
                return self._forced_up(sym, want)
            return self._held_down(sym, want)
        form = self._form(sym, want)
        if form:
            return Explanation(form)
        if self.effective.get(symbol) is not None:
            return self._set_otherwise(sym, want)
        return self._held_down(sym, want)

    def _with_fix(self, parts: list[str], steps: list[Step] | None) -> Explanation:
        if steps and len(steps) > 1:
            return Explanation("; ".join([*parts, fix_text(steps)]), tuple(s.line() for s in steps[:-1]))
        return Explanation("; ".join(parts))

    # -- why a value could not go up ------------------------------------------------

    def _held_down(self, sym: Symbol, want: str) -> Explanation:
        level = TRI[want] if sym.type in ("bool", "tristate") else 1
        parts = []
        if want == "m" and self.value("MODULES") != "y":
            parts.append(f"=m needs CONFIG_MODULES=y, and CONFIG_MODULES is {self.value('MODULES')}")
        steps = self.planner.plan(sym.name, want)
        prompted = [d for d in sym.definitions if d.prompt is not None]
        if not prompted:
            return self._with_fix([*parts, self._no_prompt(sym)], steps)
        d = min(prompted, key=lambda x: len(self._unmet(x, level)))
        unmet = self._unmet(d, level)
        if unmet:
            need = "m" if want == "m" else "y"
            terms = "; ".join(self._term(e, where, level, sym.name) for e, where in unmet)
            parts.append(f"unmet dependencies ({_c(sym.name)} needs them ={need}): {terms}")
            if steps is None:
                parts.append("no values found that meet them")
        elif d.choice is not None:
            parts.append(self._choice(sym, d))
        elif hidden := self._hidden_in(d):
            parts.append(hidden)
        elif not parts:
            parts.append(f"make olddefconfig set it to {self.value(sym.name)} (Kconfig: {d.where})")
        return self._with_fix(parts, steps)

    def _unmet(self, d: Definition, want: int) -> list[tuple[Expr, str]]:
        terms = [(t, w) for e, w in d.dependency() for t in kexpr.conjuncts(e)]
        return [(t, w) for t, w in dict.fromkeys(terms) if self.ev.tri(t) < want]

    def _term(self, e: Expr, where: str, want: int, of: str) -> str:
        if e[0] == "sym":
            return f"{e[1]}={self.ev.text(e)}{self._note(e[1])} ({where})"
        names = [n for n in dict.fromkeys(kexpr.symbols(e)) if n in self.tree.symbols]
        values = ", ".join(f"{n}={self.ev.text(('sym', n))}{self._note(n)}" for n in names)
        text = f"`{kexpr.to_text(e)}` ({where})"
        text = f"{text} with {values}" if values else f"{text} is {kexpr.TRI_NAME[self.ev.tri(e)]}"
        return text + self._cheapest(e, want, of) if e[0] == "or" else text

    def _cheapest(self, e: Expr, want: int, of: str) -> str:
        """Of the ways to meet `A || B`, the one needing the fewest changes."""
        ways = [(kexpr.to_text(d, False), self.planner.cost(d, want, of)) for d in kexpr.disjuncts(e)]
        able = sorted((cost, text) for text, cost in ways if cost is not None)
        if not able:
            test = [text for text, _ in ways if text in AVOID]
            if test:
                return f"; only {test[0]}=y meets it here (a build test of other platforms' drivers, not a fix)"
            return "; none of its ways can be met"
        cost, best = able[0]
        others = ", ".join(f"{text} needs {c}" for c, text in able[1:])
        return f"; cheapest way: {best} ({cost} change{'s' if cost != 1 else ''}{'; ' + others if others else ''})"

    def _note(self, name: str) -> str:
        """What a user needs to know about a dependency they cannot simply set."""
        sym = self.tree.symbols.get(name)
        if sym is None:
            return " (no such option on this arch)"
        if _c(name) in self.requested:
            return " (requested too, did not take either)"
        if not sym.has_prompt and self.value(name) == "n":
            by = ", ".join(_c(str(c.target)) for c in sym.selected_by[:3])
            return f" (no prompt; selected by {by})" if by else " (no prompt)"
        return ""

    def _no_prompt(self, sym: Symbol) -> str:
        by = ", ".join(f"{_c(str(c.target))} ({c.where})" for c in sym.selected_by[:4])
        text = f"{_c(sym.name)} has no prompt: only a default or a select sets it"
        return f"{text}; enable one of its selectors: {by}" if by else text

    def _choice(self, sym: Symbol, d: Definition) -> str:
        assert d.choice is not None
        choice = self.tree.choices[d.choice]
        winners = [m for m in choice.members if self.value(m) == "y"]
        text = f"choice `{choice.prompt}` ({choice.where}) took {', '.join(map(_c, winners)) or 'none'}"
        asked = [self.requested[_c(m)] for m in winners if _c(m) in self.requested]
        if asked:
            text += f", also requested =y by {asked[0].origin} (one member per choice; the later input wins)"
        return text

    # -- why a value could not go down ----------------------------------------------

    def _selectors(self, name: str, above: int) -> list[str]:
        sym = self.tree.symbols.get(name)
        found = []
        for c in sym.selected_by if sym else []:
            level = min(TRI.get(self.value(str(c.target)), 0), self.ev.tri(c.cond))
            if level >= above:
                found.append(f"{_c(str(c.target))}={self.value(str(c.target))} ({c.where})")
        return found

    def _forced_up(self, sym: Symbol, want: str) -> Explanation:
        selectors = self._selectors(sym.name, TRI[want] + 1)
        if selectors:
            more = f" and {len(selectors) - 3} more" if len(selectors) > 3 else ""
            return Explanation(
                f"selected by {', '.join(selectors[:3])}{more}: a select forces it to {self.value(sym.name)}"
            )
        d = next((x for x in sym.definitions if x.choice is not None), None)
        if d is not None and want == "n":
            choice = self.tree.choices[d.choice]  # type: ignore[index]
            return Explanation(
                f"choice `{choice.prompt}` ({choice.where}) needs one member and kept {_c(sym.name)}; "
                f"ask for another member =y instead"
            )
        hidden = self._hidden(sym)
        if hidden:
            text = f"{hidden}, so its default {self.value(sym.name)} applies; make that condition true to choose"
            return self._with_fix([text], self.planner.plan(sym.name, want))
        if not sym.has_prompt:
            default = self._default(sym)
            where = f" from its default ({default})" if default else ""
            value = self.value(sym.name)
            return Explanation(f"{_c(sym.name)} has no prompt: its value {value}{where} cannot be changed")
        implied = [f"{_c(str(c.target))} ({c.where})" for c in sym.implied_by if self.value(str(c.target)) != "n"]
        if implied:
            return Explanation(f"implied by {', '.join(implied[:3])}")
        return Explanation(f"make olddefconfig set it to {self.value(sym.name)} ({sym.definitions[0].where})")

    def _hidden(self, sym: Symbol) -> str | None:
        """Why a symbol that has a prompt shows none on this config."""
        d = next((d for d in sym.definitions if d.prompt is not None), None)
        return None if d is None else self._hidden_in(d)

    def _hidden_in(self, d: Definition) -> str | None:
        for cond in (d.prompt_cond, d.visible):
            if self.ev.tri(cond) == 0:
                return f"its prompt is hidden: `{kexpr.to_text(cond)}` is n ({d.where})"
        return None

    def _default(self, sym: Symbol) -> str | None:
        """Where the default that applies was written."""
        return next((c.where for d in sym.definitions for c in d.defaults if self.ev.tri(c.cond)), None)

    # -- other values ----------------------------------------------------------------

    def _form(self, sym: Symbol, want: str) -> str | None:
        """A string, int or hex written in a form kconfig does not read (CONFIG_LSM=y)."""
        pattern, what = FORMS.get(sym.type, (None, ""))
        if pattern is None or pattern.fullmatch(want):
            return None
        now = self.effective.get(_c(sym.name))
        if sym.type == "string" and want not in TRI:
            example, note = f'"{want}"', ""
        else:
            example, note = (now, " (its value now)") if now is not None else ('"..."', "")
        article = "an" if sym.type == "int" else "a"
        return (
            f"{_c(sym.name)} is {article} {sym.type} option: its value is {what}, e.g. {_c(sym.name)}={example}{note}"
        )

    def _set_otherwise(self, sym: Symbol, want: str) -> Explanation:
        """A string/int/hex that has a value, not the one asked for."""
        hidden = self._hidden(sym)
        if hidden:
            return self._with_fix([hidden], self.planner.plan(sym.name, want))
        if not sym.has_prompt:
            default = self._default(sym)
            where = f" from its default ({default})" if default else ""
            text = f"{_c(sym.name)} has no prompt: olddefconfig set it to {self.value(sym.name)}{where}"
            return self._with_fix([text], self.planner.plan(sym.name, want))
        return Explanation(self._out_of_range(sym, want))

    def _out_of_range(self, sym: Symbol, want: str) -> str:
        for d in sym.definitions:
            for r in d.ranges:
                if self.ev.tri(r.cond):
                    low, _, high = str(r.target).partition(" ")
                    bounds = "..".join(self.ev.text(kexpr.parse(x)) for x in (low, high))
                    return f"outside its range {bounds} ({r.where}); olddefconfig set {self.value(sym.name)}"
        return f"make olddefconfig set it to {self.value(sym.name)} ({sym.definitions[0].where})"

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.tree.symbols.keys(), n=3, cutoff=0.6)
        if close:
            names = ", ".join(map(_c, close))
            return f"no option {_c(name)} in this kernel (misspelled or removed); did you mean {names}?"
        return f"no option {_c(name)} in this kernel for this arch (misspelled or removed)"
