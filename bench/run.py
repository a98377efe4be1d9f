"""Run every benchmark in turn; each prints its JSON (ours beside its baseline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    "bench.noop_build",
    "bench.package_vs_bindeb",
    "bench.export_size",
    "bench.build_vs_hand",
    "bench.config_vs_merge",
    "bench.initramfs_vs_dracut",
    "bench.install_vs_hand",
    "bench.modules_together",
    "bench.boot_to_marker",
    "bench.arches",
]

if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHES
    failed = [b for b in chosen if subprocess.run([sys.executable, "-m", b], cwd=ROOT).returncode != 0]
    sys.exit(1 if failed else 0)
