"""The package key covers the whole build side (core/ and build/, code and data, and the
pipeline), derived from the folders: any change there is a new key (a rebuild, never a
stale package); a change on the target side or in the CLI is not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import distkernel
from distkernel.workflows.pipeline import fingerprint_of

PACKAGE = Path(distkernel.__file__).parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("code") / "distkernel"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _data_files(top: Path) -> list[str]:
    return sorted(
        str(p.relative_to(top))
        for layer in ("core", "build")
        for p in (top / layer).rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    )


def test_every_build_side_data_file_changes_the_key(tree: Path) -> None:
    base = fingerprint_of(tree)
    files = _data_files(tree)
    assert "build/data/tailor.toml" in files and "core/data/arches.toml" in files
    for rel in files:
        path = tree / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        try:
            assert fingerprint_of(tree) != base, rel
        finally:
            path.write_bytes(original)
    assert fingerprint_of(tree) == base


def test_a_new_build_side_file_changes_the_key(tree: Path) -> None:
    base = fingerprint_of(tree)
    new = tree / "build/config/newly_added.py"
    new.write_text("X = 1\n")
    try:
        assert fingerprint_of(tree) != base
    finally:
        new.unlink()


def test_target_side_and_cli_do_not_change_the_key(tree: Path) -> None:
    base = fingerprint_of(tree)
    for rel in ("target/install/api.py", "cli/__init__.py", "workflows/boottest/run.py"):
        path = tree / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        try:
            assert fingerprint_of(tree) == base, rel
        finally:
            path.write_bytes(original)
