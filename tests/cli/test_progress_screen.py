"""Progress on every wait, read off a real terminal (a tmux pane at 80 columns) while the
command runs: a download shows its bytes and rate, an external module build names the
modules and its running time; both lines go once the step is done."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.workflows.repo.index import add_packages, init_repo
from tests.build.trust.helpers import tiny_package
from tests.cli.screen import Pane
from tests.conftest import DATA, Built, cli, env_with
from tests.workflows.repo.slow import SlowServer

PKG = "packages/tiny-6.1.8-tiny-x86_64.tar.zst"
RATE = re.compile(r"download tiny-6.1.8-tiny-x86_64.tar.zst +[\d.]+ (B|KiB) of [\d.]+ KiB, [\d.]+ (B|KiB)/s")


@pytest.mark.parametrize("cols", [80, 140])
def test_a_download_shows_its_bytes_and_rate(tmp_path: Path, keys: KeySet, cols: int) -> None:
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    add_packages(repo, [tiny_package(tmp_path / "p", key=keys.path(PACKAGE_KEY), release="6.1.8-tiny")])
    size = (repo / PKG).stat().st_size
    out = tmp_path / "out"
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    # A byte every 5 ms: the download takes seconds, long enough to be watched.
    with SlowServer(repo, {PKG: "body"}, every=0.005, give_up=120) as server:
        args = ("fetch", "tiny", "--from", server.url, "--key", keys.path(PACKAGE_PUB), "--out", out)
        with Pane(*args, "--arch", "x86_64", cols=cols, rows=40, cwd=tmp_path, env=env) as pane:
            shown = pane.wait_for(RATE, timeout=60)
            line = next(x for x in shown.splitlines() if RATE.search(x))
            assert len(line.rstrip()) <= cols, line
            done = pane.finish(timeout=size * 0.005 + 120)
    assert done.code == 0, done.text
    assert not any("download tiny" in x for x in done.lines)  # the progress line went away
    assert (out / Path(PKG).name).is_file()


@pytest.mark.kernel
def test_an_external_module_build_shows_its_modules_and_time(default_package: Built, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert cli("modules", "add", DATA / "extmod" / "plain", "--name", "dk_plain", "--root", root).code == 0
    args = ("install", default_package.package, "--root", root, "--layout", "plain", "--initramfs", "none")
    with Pane(*args, cols=80, rows=40, cwd=tmp_path) as pane:
        shown = pane.wait_for("external modules (dk_plain)", timeout=300)
        line = next(x for x in shown.splitlines() if "external modules" in x)
        assert len(line.rstrip()) <= 80, line
        done = pane.finish(timeout=300)
    assert done.code == 0, done.text
    assert not any("external modules (dk_plain)" in x for x in done.lines)
