"""The real Linux 6.1 tree (extracted once by the source stage into the user cache),
its Kconfig parsed once per session, and one build dir whose kconfig tools are
compiled once: each config test then costs one olddefconfig, not a build."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.config.assemble import ResolvedConfig, resolve_config
from distkernel.build.config.kconfig import Tree, load_tree
from distkernel.build.recipe import load_recipe
from distkernel.build.source import SourceTree, prepare_source
from distkernel.core.arch import get_arch
from distkernel.core.progress import Progress
from tests.conftest import DEFAULT_RECIPE

Resolve = Callable[..., ResolvedConfig]


@pytest.fixture(scope="session")
def source_tree() -> SourceTree:
    return prepare_source(load_recipe(DEFAULT_RECIPE))


@pytest.fixture(scope="session")
def kconfig_tree(source_tree: SourceTree) -> Tree:
    start = time.monotonic()
    tree = load_tree(source_tree.path, "x86")
    seconds = time.monotonic() - start
    sys.stderr.write(f"\n[kconfig] parsed {tree.files} files, {len(tree.symbols)} symbols in {seconds:.2f} s\n")
    return tree


@pytest.fixture(scope="session")
def kbuild(source_tree: SourceTree, tmp_path_factory: pytest.TempPathFactory) -> Kbuild:
    return Kbuild(source_tree, tmp_path_factory.mktemp("kconfig-build") / "obj", get_arch("x86_64"))


@pytest.fixture(scope="session")
def defconfig(kbuild: Kbuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x86_64 defconfig, made once."""
    log = tmp_path_factory.mktemp("defconfig") / "log"
    kbuild.make("defconfig", log=log)
    target = log.parent / "defconfig"
    shutil.copyfile(kbuild.build_dir / ".config", target)
    return target


def write_recipe(folder: Path, config: str, files: dict[str, str] | None = None, name: str = "cfgtest") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    recipe = folder / "recipe.toml"
    recipe.write_text(f'[kernel]\nname = "{name}"\nsource = "debian:linux-source-6.1"\n\n[config]\n{config}\n')
    return recipe


@pytest.fixture
def resolve(kbuild: Kbuild, kconfig_tree: Tree, tmp_path: Path) -> Resolve:
    """Resolve a recipe's [config] (TOML text) in the session build dir."""

    def run(config: str, files: dict[str, str] | None = None, progress: Progress | None = None) -> ResolvedConfig:
        recipe = load_recipe(write_recipe(tmp_path / "recipe", config, files))
        return resolve_config(recipe, kbuild, tmp_path / "config.log", progress)

    return run
