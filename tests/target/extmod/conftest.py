"""Fixtures for external modules: a small fake headers tree for fast tests (its
"modules" target compiles each M/*.c into an ELF .ko with the host compiler), and the
real default package's headers for real builds."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DATA, Built, cli

EXTMOD = DATA / "extmod"

FAKE_MAKEFILE = """\
# A stand-in for a kernel headers tree (M/*/ for modules built as a group). TRACE (from
# the environment) records when each compile starts and ends, to see how many run at once.
SRCS := $(wildcard $(M)/*.c $(M)/*/*.c)
modules: $(SRCS:.c=.ko)
%.ko: %.c
\t@$(if $(TRACE),echo "+ $@" >> $(TRACE))
\t@sleep 0.2
\t@$(if $(TRACE),echo "- $@" >> $(TRACE))
\t$(CC) -c -o $@ $<
"""


@pytest.fixture
def fake_headers(tmp_path: Path) -> Path:
    top = tmp_path / "headers"
    (top / "arch" / "x86").mkdir(parents=True)
    (top / "Makefile").write_text(FAKE_MAKEFILE)
    (top / ".config").write_text("CONFIG_MODULES=y\n")
    return top


def fake_module(parent: Path, name: str, body: str = "int {name}_value;\n", **files: str) -> Path:
    """A module source for the fake headers: NAME.c (and FILES)."""
    src = parent / name
    src.mkdir(parents=True)
    (src / "Kbuild").write_text(f"obj-m := {name}.o\n")
    (src / f"{name}.c").write_text(body.format(name=name))
    for rel, text in files.items():
        (src / rel).write_text(text)
    return src


@dataclass(frozen=True)
class RealKernel:
    release: str
    headers: Path
    modules: Path  # the package's modules/ tree (copy it into a root before changing it)


@pytest.fixture(scope="session")
def real_kernel(default_package: Built, tmp_path_factory: pytest.TempPathFactory) -> RealKernel:
    top = tmp_path_factory.mktemp("real-kernel")
    subprocess.run(["tar", "--zstd", "-xf", default_package.package, "-C", top, "headers", "modules"], check=True)
    return RealKernel(default_package.metadata["kernel_release"], top / "headers", top / "modules")


def root_with_modules(root: Path, kernel: RealKernel) -> Path:
    """ROOT/lib/modules/RELEASE holding the package's modules; returns that folder."""
    moddir = root / "lib" / "modules" / kernel.release
    shutil.copytree(kernel.modules, moddir)
    return moddir


@pytest.fixture(scope="module")
def installed(default_package: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A root where two modules were registered before the kernel was installed: one
    for the initramfs (dk_plain), one that does not compile (broken)."""
    root = tmp_path_factory.mktemp("extmod-root")
    assert cli("modules", "add", EXTMOD / "plain", "--name", "dk_plain", "--initramfs", "--root", root).code == 0
    assert cli("modules", "add", EXTMOD / "broken", "--root", root).code == 0
    run = cli("install", default_package.package, "--root", root, "--json")
    assert run.code == 0, run.err
    return root, default_package.metadata["kernel_release"]
