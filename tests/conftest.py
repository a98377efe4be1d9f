"""Shared fixtures. Real-kernel tests share one build of the default recipe, cached by
content under the user cache dir, so a rerun answers from the package cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.recipekeys import ensure_recipe_keys

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "recipes" / "qemu-minimal.toml"
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.out)  # type: ignore[no-any-return]


def cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run the real `distkernel` entry point in a subprocess."""
    argv = [sys.executable, "-m", "distkernel", *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def assert_user_facing_error(run: Run, code: int, *needles: str) -> None:
    """One clear line (plus optional detail lines), the right exit code, no traceback."""
    assert run.code == code, (run.code, run.err)
    assert "Traceback" not in run.err
    first = run.err.strip().splitlines()[0]
    assert first.startswith("distkernel: error: "), run.err
    for needle in needles:
        assert needle in first, (needle, first)


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose distkernel cache is empty and private to the test."""
    cache = tmp_path / "cache"
    yield env_with(DISTKERNEL_CACHE=str(cache))


def make_fake_tree(top: Path, sublevel: int = 7) -> Path:
    """A tiny stand-in for a kernel tree: enough for source and patch handling."""
    top.mkdir(parents=True)
    (top / "Makefile").write_text(
        f"# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = {sublevel}\nEXTRAVERSION =\n"
        "NAME = Fake\n"
    )
    (top / "init").mkdir()
    (top / "init" / "main.c").write_text("int main(void)\n{\n\treturn 0;\n}\n")
    return top


@pytest.fixture
def fake_tarball(tmp_path: Path) -> Path:
    tree = make_fake_tree(tmp_path / "src" / "linux-6.1.7")
    tarball = tmp_path / "linux-6.1.7.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname="linux-6.1.7")
    return tarball


@dataclass(frozen=True)
class Built:
    package: Path
    metadata: dict  # type: ignore[type-arg]
    first_run: dict  # type: ignore[type-arg]


@pytest.fixture(scope="session")
def default_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The default recipe, built for real (or answered from the user's package cache)."""
    out = tmp_path_factory.mktemp("default-out")
    run = cli("build", DEFAULT_RECIPE, "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    return Built(Path(doc["package"]), doc["metadata"], doc)


RICH_RECIPE = DATA / "recipes" / "rich.toml"


@pytest.fixture(scope="session")
def rich_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The suite's one richer kernel (data/recipes/rich.toml: systemd, qemu-guest, what
    the Debian dkms packages need, and every signature), cached by content like the
    default one."""
    ensure_recipe_keys()
    out = tmp_path_factory.mktemp("rich-out")
    run = cli("build", RICH_RECIPE, "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    return Built(Path(doc["package"]), doc["metadata"], doc)


@pytest.fixture
def copy_of(tmp_path: Path):  # type: ignore[no-untyped-def]
    def copy(path: Path) -> Path:
        target = tmp_path / path.name
        shutil.copyfile(path, target)
        return target

    return copy


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One signing key set for the session (RSA-4096 generation takes a second or two)."""
    from tests.build.trust.helpers import make_keys

    return make_keys(tmp_path_factory.mktemp("keys") / "k")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.build.trust.helpers import make_keys

    return make_keys(tmp_path_factory.mktemp("other-keys") / "k")
