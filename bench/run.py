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
    "bench.sign_package",
    "bench.bump_nothing_new",
    "bench.binhost_install",
    "bench.matrix_vs_serial",
]
# Not run by default, each tens of minutes or more: bench.distcc (two full compiles),
# bench.real_system (two upgrades of a real Debian guest), bench.debian_acceptance
# (Debian's archive and a 6.12 build); name them to run them.

if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHES
    failed = [b for b in chosen if subprocess.run([sys.executable, "-m", b], cwd=ROOT).returncode != 0]
    sys.exit(1 if failed else 0)
