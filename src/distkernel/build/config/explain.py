"""Why a requested value did not take, read from the Kconfig tree of the same source
and the effective values: unmet dependencies (with the blocks around a symbol), the
fix as a chain, choices, select/imply, `=m` on a bool, unknown names."""

from __future__ import annotations

import difflib

from distkernel.build.config import kexpr
from distkernel.build.config.kconfig import Definition, Symbol, Tree
from distkernel.build.config.kexpr import TRI, Evaluator, Expr
from distkernel.build.config.values import Setting

MAX_CHAIN = 6


def _c(name: str) -> str:
    return f"CONFIG_{name}"


class Explainer:
    def __init__(self, tree: Tree, effective: dict[str, str], requested: dict[str, Setting]):
        self.tree, self.effective, self.requested = tree, effective, requested
        self.ev = Evaluator(lambda n: effective.get(_c(n)), effective.get("CONFIG_MODULES") == "y")

    def value(self, name: str) -> str:
        return self.effective.get(_c(name), "n")

    def explain(self, symbol: str, want: str) -> str:
        name = symbol.removeprefix("CONFIG_")
        sym = self.tree.symbols.get(name)
        if sym is None:
            return self._unknown(name)
        if sym.type in ("bool", "tristate"):
            if want not in TRI:
                return f"{symbol} is a {sym.type}: use y{', m' if sym.type == 'tristate' else ''} or n"
            if want == "m" and sym.type == "bool":
                return f"{symbol} is a bool: it cannot be m; ask for y (built in) or n"
            if want == "m" and self.value("MODULES") != "y":
                return f"=m needs CONFIG_MODULES=y, and CONFIG_MODULES is {self.value('MODULES')}; add CONFIG_MODULES=y"
            have = TRI.get(self.value(name), 0)
            if TRI[want] < have:
                return self._forced_up(sym, want)
            return self._held_down(sym, TRI[want])
        if self.effective.get(symbol) is not None:
            return self._hidden(sym) or self._out_of_range(sym, want)
        return self._held_down(sym, 2)

    # -- why a value could not go up ------------------------------------------------

    def _held_down(self, sym: Symbol, want: int) -> str:
        prompted = [d for d in sym.definitions if d.prompt is not None]
        if not prompted:
            return self._no_prompt(sym)
        d = min(prompted, key=lambda x: len(self._unmet(x, want)))
        unmet = self._unmet(d, want)
        if unmet:
            need = kexpr.TRI_NAME[want] if want == 1 else "y"
            terms = "; ".join(self._term(e, where, want) for e, where in unmet)
            text = f"unmet dependencies ({_c(sym.name)} needs them ={need}): {terms}"
            chain = self._chain(sym.name, want)
            if chain:
                steps = ", ".join(f"{_c(n)}={v}" for n, v in chain)
                text += f"; fix: add {steps}, then {_c(sym.name)}={kexpr.TRI_NAME[want]} takes"
            return text
        if d.choice is not None:
            return self._choice(sym, d)
        hidden = [c for c in (d.prompt_cond, d.visible) if self.ev.tri(c) == 0]
        if hidden:
            return f"its prompt is hidden: `{kexpr.to_text(hidden[0])}` is n ({d.where})"
        return f"make olddefconfig set it to {self.value(sym.name)} (Kconfig: {d.where})"

    def _unmet(self, d: Definition, want: int) -> list[tuple[Expr, str]]:
        terms = [(t, w) for e, w in d.dependency() for t in kexpr.conjuncts(e)]
        return [(t, w) for t, w in dict.fromkeys(terms) if self.ev.tri(t) < want]

    def _term(self, e: Expr, where: str, want: int) -> str:
        if e[0] == "sym":
            return f"{e[1]}={self.ev.text(e)}{self._note(e[1])} ({where})"
        names = [n for n in dict.fromkeys(kexpr.symbols(e)) if n in self.tree.symbols]
        values = ", ".join(f"{n}={self.ev.text(('sym', n))}{self._note(n)}" for n in names)
        text = f"`{kexpr.to_text(e)}` ({where})"
        return f"{text} with {values}" if values else f"{text} is {kexpr.TRI_NAME[self.ev.tri(e)]}"

    def _note(self, name: str) -> str:
        """What a user needs to know about a dependency they cannot simply set."""
        sym = self.tree.symbols[name]
        if _c(name) in self.requested:
            return " (requested too, did not take either)"
        if not sym.has_prompt and self.value(name) == "n":
            by = ", ".join(_c(str(c.target)) for c in sym.selected_by[:3])
            return f" (no prompt; selected by {by})" if by else " (no prompt)"
        return ""

    def _chain(self, name: str, want: int, depth: int = 0) -> list[tuple[str, str]] | None:
        """The settings that, added in order, let `name` reach `want`; None when the fix
        is no simple chain (an `||`, a comparison, a symbol without a prompt)."""
        sym = self.tree.symbols.get(name)
        if sym is None or depth > MAX_CHAIN:
            return None
        prompted = [d for d in sym.definitions if d.prompt is not None]
        if not prompted:
            return None
        steps: list[tuple[str, str]] = []
        for e, _ in self._unmet(prompted[0], want):
            if e[0] == "sym" and e[1] in self.tree.symbols:
                dep = self.tree.symbols[e[1]]
                level = want if dep.type == "tristate" else 2
                sub = self._chain(dep.name, level, depth + 1)
                if sub is None:
                    return None
                steps += [*sub, (dep.name, kexpr.TRI_NAME[level])]
            elif e[0] == "not" and e[1][0] == "sym" and not self._selectors(e[1][1], 1):
                steps.append((e[1][1], "n"))
            else:
                return None
        return list(dict.fromkeys(steps))

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

    def _forced_up(self, sym: Symbol, want: str) -> str:
        selectors = self._selectors(sym.name, TRI[want] + 1)
        if selectors:
            more = f" and {len(selectors) - 3} more" if len(selectors) > 3 else ""
            return f"selected by {', '.join(selectors[:3])}{more}: a select forces it to {self.value(sym.name)}"
        d = next((x for x in sym.definitions if x.choice is not None), None)
        if d is not None and want == "n":
            choice = self.tree.choices[d.choice]  # type: ignore[index]
            return (
                f"choice `{choice.prompt}` ({choice.where}) needs one member and kept {_c(sym.name)}; "
                f"ask for another member =y instead"
            )
        hidden = self._hidden(sym)
        if hidden:
            return f"{hidden}, so its default {self.value(sym.name)} applies; make that condition true to choose"
        if not sym.has_prompt:
            default = next((c for d in sym.definitions for c in d.defaults if self.ev.tri(c.cond)), None)
            where = f" from its default ({default.where})" if default else ""
            return f"{_c(sym.name)} has no prompt: its value {self.value(sym.name)}{where} cannot be changed"
        implied = [f"{_c(str(c.target))} ({c.where})" for c in sym.implied_by if self.value(str(c.target)) != "n"]
        if implied:
            return f"implied by {', '.join(implied[:3])}"
        return f"make olddefconfig set it to {self.value(sym.name)} ({sym.definitions[0].where})"

    def _hidden(self, sym: Symbol) -> str | None:
        """Why a symbol that has a prompt shows none on this config."""
        for d in sym.definitions:
            if d.prompt is None:
                continue
            for cond in (d.prompt_cond, d.visible):
                if self.ev.tri(cond) == 0:
                    return f"its prompt is hidden: `{kexpr.to_text(cond)}` is n ({d.where})"
            return None
        return None

    # -- other values ----------------------------------------------------------------

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
