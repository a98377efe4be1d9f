"""ruff and mypy are part of the test suite, so CI keeps the code clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_clean() -> None:
    run = subprocess.run([BIN / "ruff", "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_ruff_format_clean() -> None:
    run = subprocess.run(
        [BIN / "ruff", "format", "--check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout


def test_mypy_clean() -> None:
    run = subprocess.run([BIN / "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
