"""One kernel per architecture, shared by every test of that arch: its embedded default
recipe (qemu-minimal-ARCH), built for real once and then answered from the user's
package cache, like the x86_64 `default_package`. Each distinct config costs minutes of
CI on a cold cache, so no test here builds another one (the panic tests boot the same
kernel with a bad rdinit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.core.arch import get_arch
from tests.conftest import ROOT, Built, cli

RECIPES = ROOT / "recipes"


def build_arch_package(arch: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    a = get_arch(arch)
    if not a.native and shutil.which(f"{a.triplet}-gcc") is None:
        pytest.skip(f"no {arch} cross compiler here (apt-get install {a.cross_package})")
    out = tmp_path_factory.mktemp(f"{arch}-out")
    run = cli("build", RECIPES / f"qemu-minimal-{arch}.toml", "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    return Built(Path(doc["package"]), doc["metadata"], doc)


@pytest.fixture(scope="session")
def arm64_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_arch_package("arm64", tmp_path_factory)


@pytest.fixture(scope="session")
def i386_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_arch_package("i386", tmp_path_factory)


@pytest.fixture(scope="session")
def ppc64le_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_arch_package("ppc64le", tmp_path_factory)
