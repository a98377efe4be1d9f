"""The persistent keys of the suite's signing recipe (data/recipes/rich.toml's [sign]):
made once with the library's key generation and kept across sessions (gitignored), so
the same key signs every build and the signed kernel's cache entry stays warm."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

from distkernel.build.trust.keys import PACKAGE_KEY, generate_keys

KEYS = Path(__file__).resolve().parent / "data" / "recipes" / "keys"


def ensure_recipe_keys() -> Path:
    """KEYS, made first when missing (once, however many processes ask at a time)."""
    KEYS.parent.mkdir(parents=True, exist_ok=True)
    with open(KEYS.parent / ".keys.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not (KEYS / PACKAGE_KEY).exists():
            shutil.rmtree(KEYS, ignore_errors=True)
            generate_keys(KEYS, name="distkernel-test")
    return KEYS
