"""The binhost fixtures: a repo of small real packages, served by the real
`distkernel repo serve` on 127.0.0.1 (a port it picks)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, KeySet
from distkernel.workflows.repo.index import add_packages, init_repo
from tests.build.trust.helpers import tiny_package
from tests.conftest import Built
from tests.workflows.repo.binhost_fixtures import make_www
from tests.workflows.repo.nginx import Nginx, nginx


@pytest.fixture
def repo(tmp_path: Path, keys: KeySet) -> Path:
    """Built through the library (the CLI's repo commands are tested in test_index)."""
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    pkgs = [
        tiny_package(tmp_path / "p1", key=keys.path(PACKAGE_KEY), release="6.1.7-tiny"),
        tiny_package(tmp_path / "p2", key=keys.path(PACKAGE_KEY), release="6.1.8-tiny"),
        tiny_package(tmp_path / "p3", key=keys.path(PACKAGE_KEY), release="6.1.8-tiny", variant="dracut"),
        tiny_package(tmp_path / "p4", key=keys.path(PACKAGE_KEY), release="6.1.8-tiny", arch="arm64"),
    ]
    add_packages(repo, pkgs)
    return repo


@contextlib.contextmanager
def served(repo: Path) -> Iterator[str]:
    """`distkernel repo serve` on a free port of 127.0.0.1, for real; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "distkernel", "repo", "serve", str(repo), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("serving "), proc.stderr.read() if proc.stderr else line
    try:
        yield line.split(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def url(repo: Path) -> Iterator[str]:
    with served(repo) as where:
        yield where


@pytest.fixture(scope="session")
def www(default_package: Built, keys: KeySet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static binhost folders of the default kernel package (see make_www)."""
    www = tmp_path_factory.mktemp("binhost") / "www"
    make_www(www, default_package, keys)
    return www


@pytest.fixture
def server(www: Path, tmp_path: Path) -> Iterator[Nginx]:
    """Debian's nginx serving `www` on 127.0.0.1 for one test (its own logs)."""
    with nginx(www, tmp_path / "nginx") as running:
        yield running
