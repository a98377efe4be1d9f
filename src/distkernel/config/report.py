"""The config report: every requested value against the effective .config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distkernel.config.values import Origin, Setting


@dataclass(frozen=True)
class ConfigEntry:
    symbol: str
    requested: str
    effective: str  # "n" when the symbol is absent from the effective .config
    origin: Origin  # the input whose value won (later inputs win)
    overrides: tuple[Setting, ...] = ()  # earlier, different values this one replaced
    reason: str | None = None  # why it did not take (the config engine explains)

    @property
    def took(self) -> bool:
        return self.requested == self.effective

    @property
    def conflict(self) -> bool:
        """Two requested inputs (not the base) asked for different values."""
        return any(not o.origin.where.startswith("base") for o in self.overrides)

    def to_json(self) -> dict[str, Any]:
        return {
            "option": self.symbol,
            "requested": self.requested,
            "effective": self.effective,
            "took": self.took,
            "from": str(self.origin),
            "overrides": [{"value": o.value, "from": str(o.origin)} for o in self.overrides],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ConfigReport:
    base: str
    entries: tuple[ConfigEntry, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def misses(self) -> tuple[ConfigEntry, ...]:
        return tuple(e for e in self.entries if not e.took)

    @property
    def conflicts(self) -> tuple[ConfigEntry, ...]:
        return tuple(e for e in self.entries if e.conflict)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "requested": len(self.entries),
            "took": len(self.entries) - len(self.misses),
            "missed": len(self.misses),
            "entries": [e.to_json() for e in self.entries],
            "notes": list(self.notes),
        }


def build_report(
    base: str, base_values: dict[str, str], requested: list[Setting], effective: dict[str, str]
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
            earlier.insert(0, Setting(symbol, base_value, Origin(f"base {base}")))
        entries.append(ConfigEntry(symbol, winner.value, effective.get(symbol, "n"), winner.origin, tuple(earlier)))
    return ConfigReport(base, tuple(entries))
