"""Run every benchmark in turn; each prints its JSON (ours beside its baseline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    "bench.p2_noop",
    "bench.p3_package",
    "bench.p1_build",
    "bench.p7_config",
    "bench.p4_initramfs",
    "bench.p5_install",
    "bench.p8_modules",
    "bench.p6_boot",
]

if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHES
    failed = [b for b in chosen if subprocess.run([sys.executable, "-m", b], cwd=ROOT).returncode != 0]
    sys.exit(1 if failed else 0)
