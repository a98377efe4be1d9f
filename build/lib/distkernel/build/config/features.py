"""Feature profiles: .config fragments shipped as data (config/features/NAME.config).

Besides `CONFIG_X=value` lines, a profile may annotate the option that follows:
`# why: ...` (its rationale) and `# optional: ...` (it may not take on every base,
and why that is fine). The first comment line is the profile's description."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from distkernel.build.config.values import Origin, Setting, parse_line
from distkernel.core.errors import UserError


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    settings: tuple[Setting, ...]
    why: dict[str, str]  # option -> rationale
    optional: dict[str, str]  # option -> why it may not take


def features_dir() -> Path:
    return Path(str(resources.files("distkernel.build.config").joinpath("features")))


@cache
def known_features() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in features_dir().glob("*.config")))


def _parse(name: str, path: Path) -> Feature:
    description, settings = "", []
    why: dict[str, str] = {}
    optional: dict[str, str] = {}
    pending: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        for tag in ("why", "optional"):
            if text.startswith(f"# {tag}:"):
                pending[tag] = text.split(":", 1)[1].strip()
                break
        else:
            try:
                parsed = parse_line(text)
            except ValueError:
                raise UserError(f"{path}:{number}: not a config line: `{text}`") from None
            if parsed:
                settings.append(Setting(parsed[0], parsed[1], Origin(f"feature {name}", number)))
                for tag, target in (("why", why), ("optional", optional)):
                    if tag in pending:
                        target[parsed[0]] = pending.pop(tag)
            elif text.startswith("#") and not description and not settings:
                description = text.lstrip("# ").strip()
    return Feature(name, description, tuple(settings), why, optional)


@cache
def load_feature(name: str) -> Feature:
    path = features_dir() / f"{name}.config"
    if name not in known_features():
        raise UserError(f"unknown feature `{name}` (known: {', '.join(known_features())})")
    return _parse(name, path)
