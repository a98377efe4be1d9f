"""What the per-arch tests share: a boot through the CLI, a root of that arch (its own
busybox and systemd-boot, from Debian's archive), and the panic line each arch's kernel
printed when it was made to panic (data/panic-lines.toml, recorded from real boots)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from distkernel.core.arch import get_arch
from distkernel.workflows.boottest.foreign import populate_root
from distkernel.workflows.boottest.profile import profile
from tests.conftest import DATA, Built, cli

# Generous: TCG boots of another arch under load from parallel builds.
TIMEOUT = "180"


def boot(pkg: Path, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    run = cli("test", pkg, "--json", "--timeout", TIMEOUT, "--log-dir", tmp_path / "logs", *args)
    assert "Traceback" not in run.err, run.err
    return run.code, run.json()


def arch_root(path: Path, arch: str) -> Path:
    """An empty root of ARCH with an ESP: what a root of that machine has that install
    and the boot test read (its static busybox, its systemd-boot-efi)."""
    (path / "efi" / "EFI").mkdir(parents=True)
    populate_root(path, get_arch(arch), profile(arch).root_packages)
    return path


def _panic_lines() -> dict[str, Any]:
    return tomllib.loads((DATA / "panic-lines.toml").read_text())


def recorded_panic(arch: str) -> str:
    return str(_panic_lines()[arch]["line"])


def assert_panics(built: Built, tmp_path: Path, arch: str) -> None:
    """A kernel made to panic (rdinit names nothing) is classified as a panic, with the
    line this arch's kernel prints."""
    code, doc = boot(built.package, tmp_path, "--append", "rdinit=/nonexistent")
    assert code == 1, doc
    assert doc["outcome"] == "panic", doc
    assert doc["detail"] == recorded_panic(arch), doc["detail"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_reproducible(built: Built, recipe: Path, tmp_path: Path) -> None:
    """A second build in a new, empty build dir (--fresh: no package cache; the compiler
    cache makes it cheap) gives the same package, byte for byte."""
    run = cli("build", recipe, "--fresh", "--out", tmp_path / "again", "--json")
    assert run.code == 0, run.err
    again = Path(run.json()["package"])
    assert not run.json()["cached"]
    assert sha256(again) == sha256(built.package)
