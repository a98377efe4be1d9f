"""Retention rules on a state alone (the running-kernel rule only applies to the root /,
which tests never touch)."""

from __future__ import annotations

import os

from distkernel.target.install.retention import to_prune
from distkernel.target.install.state import KernelRecord, State


def kernel(release: str, seq: int, *, good: bool = False) -> KernelRecord:
    return KernelRecord(release, "plain", "p", "x86_64", seq, "none", "", "", "", known_good=good)


def test_never_the_default_the_running_one_on_host_nor_the_last_known_good() -> None:
    running = os.uname().release
    kernels = [kernel("k1", 1, good=True), kernel(running, 2), kernel("k3", 3), kernel("k4", 4), kernel("k5", 5)]
    state = State({k.release: k for k in kernels}, default="k3")
    assert to_prune(state, 1, is_host=False) == ["k4", running]  # k5 kept (newest), k3 default, k1 good
    assert to_prune(state, 1, is_host=True) == ["k4"]
    assert to_prune(state, 10, is_host=True) == []
