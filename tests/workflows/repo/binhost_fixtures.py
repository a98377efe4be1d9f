"""A binhost of the default kernel package as a folder of static files (made with the
real `repo init`, `sign`, `repo add`), and clients that install from it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from tests.conftest import Built, Run, cli, env_with

NAME = "qemu-minimal"  # the default recipe's package name


def make_www(www: Path, default_package: Built, keys: KeySet) -> None:
    """www/main: serial 3; www/old: the same repo at serial 2 (a stale mirror)."""
    pkg = www.parent / "pkg" / default_package.package.name
    pkg.parent.mkdir(parents=True)
    shutil.copyfile(default_package.package, pkg)
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    main = www / "main"
    for args in (("repo", "init", main, "--key", keys.path(PACKAGE_KEY)), ("repo", "add", main, pkg)):
        run = cli(*args)
        assert run.code == 0, run.err
    shutil.copytree(main, www / "old")
    run = cli("repo", "add", main, pkg)  # the same package again: a new index, serial 3
    assert run.code == 0, run.err


def index_entry(repo: Path) -> dict[str, object]:
    entry: dict[str, object] = json.loads((repo / "index.json").read_text())["signed"]["packages"][0]
    return entry


def trusting_root(root: Path, keys: KeySet) -> Path:
    (root / TRUSTED_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(PACKAGE_PUB), root / TRUSTED_DIR / "package.pub")
    return root


def install_argv(root: Path, *urls: str) -> list[str]:
    froms = [a for u in urls for a in ("--from", u)]
    options = ["--root", str(root), "--layout", "plain", "--initramfs", "none", "--json"]
    return [sys.executable, "-m", "distkernel", "install", NAME, *froms, *options]


def install(root: Path, cache: Path, *urls: str) -> Run:
    argv = install_argv(root, *urls)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env_with(DISTKERNEL_CACHE=str(cache)), check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def fetch(root: Path, out: Path, cache: Path, *urls: str) -> Run:
    froms = [a for u in urls for a in ("--from", u)]
    return cli("fetch", NAME, *froms, "--root", root, "--out", out, env=env_with(DISTKERNEL_CACHE=str(cache)))


def requests(log: list[str], method: str, path_start: str) -> list[list[str]]:
    """The access-log lines (split) of METHOD requests whose path starts with PATH_START."""
    return [line.split() for line in log if line.startswith(f"{method} {path_start}")]
