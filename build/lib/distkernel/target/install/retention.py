"""Which of distkernel's kernels `--keep N` prunes: beyond the N newest, but never the
default, never the running kernel when the root is this machine's /, never the newest
known-good one. Kernels distkernel did not install are not in the state at all."""

from __future__ import annotations

import os

from distkernel.target.install.state import State


def protected(state: State, *, is_host: bool) -> dict[str, str]:
    """release -> why it must stay."""
    why: dict[str, str] = {}
    if state.default:
        why[state.default] = "default"
    if is_host:
        why.setdefault(os.uname().release, "running")
    good = next((k for k in state.ordered() if k.known_good), None)
    if good is not None:
        why.setdefault(good.release, "last known-good")
    return why


def to_prune(state: State, keep: int, *, is_host: bool) -> list[str]:
    keep = max(keep, 1)
    safe = protected(state, is_host=is_host)
    return [k.release for k in state.ordered()[keep:] if k.release not in safe]
