"""Every test file is part of the suite: pytest silently skips folders it treats as
build output (`build` among them) unless pyproject.toml says otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_file_is_collected() -> None:
    run = subprocess.run(
        # -m "": every marker, the `extended` tests that `make test` leaves out included
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", ""],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    collected = {line.split("::", 1)[0] for line in run.stdout.splitlines() if "::" in line}
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")}
    assert on_disk - collected == set(), run.stdout[-2000:]
