"""This machine's defaults for distkernel: /etc/distkernel/distkernel.toml, or the file
$DISTKERNEL_CONFIG names. Only defaults live here; an option on the command line wins.

    binhost = "https://kernels.example.org/"  # install NAME / fetch NAME: --from
    layout = "bls"                             # install: --layout
    initramfs = "builtin"                      # install: --initramfs
    keep = 3                                   # install: --keep
    cache_dir = "/var/cache/distkernel"        # --cache-dir
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.core.paths import SETTINGS

SYSTEM_FILE = Path("/") / SETTINGS
ENV = "DISTKERNEL_CONFIG"


@dataclass(frozen=True)
class Settings:
    binhost: str | None = None
    layout: str | None = None
    initramfs: str | None = None
    keep: int | None = None
    cache_dir: str | None = None
    file: Path | None = None  # the file these came from, for messages

    def defaults(self) -> dict[str, dict[str, object]]:
        """click's default_map: command name -> option name -> value."""
        install: dict[str, object] = {}
        if self.binhost:
            install["source"] = self.binhost
        for key in ("layout", "initramfs", "keep"):
            if (value := getattr(self, key)) is not None:
                install[key] = value
        fetch: dict[str, object] = {"source": self.binhost} if self.binhost else {}
        return {"install": install, "fetch": fetch}


TYPES: dict[str, type] = {"binhost": str, "layout": str, "initramfs": str, "keep": int, "cache_dir": str}


def settings_file() -> Path | None:
    named = os.environ.get(ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise UserError(f"${ENV}={named}: no such file; create it or unset {ENV}")
        return path
    return SYSTEM_FILE if SYSTEM_FILE.is_file() else None


def load_settings(choices: dict[str, tuple[str, ...]] | None = None) -> Settings:
    """The settings file's values, checked: unknown keys and wrong types are errors that
    name the file and the key. `choices` limits keys to known values (layout names)."""
    path = settings_file()
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e}); fix the file or remove it") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from None
    known = [f.name for f in fields(Settings) if f.name != "file"]
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in TYPES:
            raise UserError(f"{path}: {key}: unknown key; known keys: {', '.join(known)}")
        if type(value) is not TYPES[key]:
            raise UserError(f"{path}: {key}: must be a {TYPES[key].__name__}, not {type(value).__name__}")
        allowed = (choices or {}).get(key)
        if allowed and value not in allowed:
            raise UserError(f"{path}: {key} = {value!r}: not one of {', '.join(allowed)}")
        if key == "keep" and isinstance(value, int) and value < 1:
            raise UserError(f"{path}: keep = {value}: must be 1 or more")
        values[key] = value
    return Settings(**values, file=path)  # type: ignore[arg-type]
