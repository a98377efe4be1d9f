"""The config report: every requested value against the effective .config, where the
winning value came from, what it overrode, and why it did not take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distkernel.build.config.values import Origin, Setting

WHOLE_CONFIGS = ("base ", "savedconfig ")  # origins of the starting config, not of an input


@dataclass(frozen=True)
class ConfigEntry:
    symbol: str
    requested: str
    effective: str  # "n" when the symbol is absent from the effective .config
    origin: Origin  # the input whose value won (later inputs win)
    overrides: tuple[Setting, ...] = ()  # earlier, different values this one replaced
    reason: str | None = None  # why it did not take (explain.py)
    fix: tuple[str, ...] = ()  # `CONFIG_X=v` lines that, added, make it take (explain.py)
    optional: str | None = None  # a feature marks it optional, and why

    @property
    def took(self) -> bool:
        return self.requested == self.effective

    @property
    def conflict(self) -> bool:
        """Two requested inputs (not the base) asked for different values."""
        return any(not o.origin.where.startswith(WHOLE_CONFIGS) for o in self.overrides)

    def overridden(self) -> str:
        """`overrides CONFIG_X=n from base tinyconfig` for the report."""
        return "; ".join(f"overrides {self.symbol}={o.value} from {o.origin}" for o in self.overrides)

    def describe(self) -> str:
        if self.took:
            return f"{self.symbol}={self.requested} from {self.origin} {self.overridden()} (the later input wins)"
        why = f": {self.reason}" if self.reason else ""
        return f"{self.symbol}: requested {self.requested}, effective {self.effective} (from {self.origin}){why}"

    def to_json(self) -> dict[str, Any]:
        return {
            "option": self.symbol,
            "requested": self.requested,
            "effective": self.effective,
            "took": self.took,
            "from": str(self.origin),
            "overrides": [{"value": o.value, "from": str(o.origin)} for o in self.overrides],
            "conflict": self.conflict,
            "reason": self.reason,
            "fix": list(self.fix),
            "optional": self.optional,
        }


@dataclass(frozen=True)
class ConfigReport:
    base: str
    entries: tuple[ConfigEntry, ...]
    notes: tuple[str, ...] = field(default=())
    new_options: tuple[tuple[str, str], ...] = ()  # options a savedconfig did not know, as chosen
    tailoring: dict[str, int] | None = None  # module counts before/after host tailoring

    @property
    def misses(self) -> tuple[ConfigEntry, ...]:
        """Requested values that did not take (optional ones excepted)."""
        return tuple(e for e in self.entries if not e.took and not e.optional)

    @property
    def skipped(self) -> tuple[ConfigEntry, ...]:
        return tuple(e for e in self.entries if not e.took and e.optional)

    @property
    def conflicts(self) -> tuple[ConfigEntry, ...]:
        return tuple(e for e in self.entries if e.conflict)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "requested": len(self.entries),
            "took": len(self.entries) - len(self.misses) - len(self.skipped),
            "missed": len(self.misses),
            "optional_missed": len(self.skipped),
            "conflicts": len(self.conflicts),
            "entries": [e.to_json() for e in self.entries],
            "notes": list(self.notes),
            "new_options": dict(self.new_options),
            "tailoring": self.tailoring,
        }


def build_report(
    base: str,
    base_values: dict[str, str],
    requested: list[Setting],
    effective: dict[str, str],
    optional: dict[str, str] | None = None,
) -> ConfigReport:
    """One entry per requested symbol; the last input wins, earlier differing values
    (and the base's, when it differed) are kept as what it overrode."""
    by_symbol: dict[str, list[Setting]] = {}
    for s in requested:
        by_symbol.setdefault(s.symbol, []).append(s)
    entries = []
    for symbol, settings in by_symbol.items():
        winner = settings[-1]
        earlier = [s for s in settings[:-1] if s.value != winner.value]
        base_value = base_values.get(symbol, "n")
        if base_value != winner.value:
            earlier.insert(0, Setting(symbol, base_value, Origin(base)))
        why = (optional or {}).get(symbol) if winner.origin.where.startswith("feature ") else None
        entries.append(
            ConfigEntry(symbol, winner.value, effective.get(symbol, "n"), winner.origin, tuple(earlier), optional=why)
        )
    return ConfigReport(base, tuple(entries))
