"""Shared helpers for the benchmarks: each prints one JSON document with our number
beside its baseline, measured in the same run."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distkernel.core.cache import cache_dir

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "recipes" / "qemu-minimal.toml"
DISTKERNEL = [sys.executable, "-m", "distkernel"]

# The CLI starts as an installed package does: pip byte-compiles distkernel when it
# installs it, so a run reads .pyc files instead of compiling each module it imports
# (0.1-0.2 s a run in an environment with PYTHONDONTWRITEBYTECODE set). The compiled
# files go under the user cache, never into the checkout.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(cache_dir("bench", "pycache")))


def timed(fn: Callable[[], object]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far: the
    difference around a step is the work its tools did, whatever the wall clock says."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_time(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeat))


def sh(*argv: str | os.PathLike[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run([os.fspath(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, argv))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def report(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc = {"benchmark": name, **doc}
    print(json.dumps(doc, indent=2), flush=True)
    return doc


def ratio(ours: float, baseline: float) -> float:
    return round(ours / baseline, 3) if baseline else float("inf")


def marker_seconds(argv: list[str], marker: str, timeout: float, what: str) -> float:
    """Run a hand-written qemu line; seconds until its console prints the line MARKER."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            if raw.decode(errors="replace").strip() == marker:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                break
    finally:
        proc.kill()
        proc.wait()
    raise SystemExit(f"bench: {what} printed no marker")
