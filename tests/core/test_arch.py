"""Architectures are data (core/data/arches.toml): each names its make ARCH, its cross
toolchain and the Debian package holding it, its Debian architecture and the option
that tells its .config apart; the tools table names every cross toolchain and emulator."""

from __future__ import annotations

import os
from pathlib import Path

from distkernel.core.arch import get_arch, known_arches
from distkernel.core.tools import known_tools
from distkernel.target.extmod.kernel import Kernel
from distkernel.workflows.boottest.profile import profile
from tests.conftest import assert_user_facing_error, cli, env_with

ARCHES = ("x86_64", "arm64", "ppc64le", "i386")


def test_the_four_arches_are_known_with_their_toolchain_package() -> None:
    assert set(ARCHES) <= set(known_arches())
    i386 = get_arch("i386")
    assert (i386.kbuild, i386.srcarch, i386.triplet, i386.cross_package) == (
        "i386",
        "x86",
        "i686-linux-gnu",
        "gcc-i686-linux-gnu",
    )
    assert get_arch("ppc64le").debian == "ppc64el"
    for name in ARCHES:
        arch = get_arch(name)
        assert arch.cross_package == f"gcc-{arch.triplet.replace('_', '-')}"
        assert arch.kconfig.startswith("CONFIG_")


def test_every_cross_toolchain_and_emulator_is_a_listed_tool() -> None:
    """bootstrap installs what tools.toml lists and doctor names it."""
    packages = {t.package for t in known_tools()}
    for name in ("arm64", "ppc64le", "i386"):
        assert get_arch(name).cross_package in packages
        assert profile(name).binary in {t.check for t in known_tools()}
    assert "qemu-efi-aarch64" in packages


def test_x86_headers_tell_i386_from_x86_64_by_their_config(tmp_path: Path) -> None:
    for name, option in (("x86_64", "CONFIG_X86_64=y"), ("i386", "CONFIG_X86_32=y")):
        headers = tmp_path / name
        (headers / "arch" / "x86").mkdir(parents=True)
        (headers / ".config").write_text(f"{option}\n")
        assert Kernel.from_headers("6.1.0", headers, tmp_path / "mods").arch == get_arch(name)


def test_build_refuses_an_arch_without_its_cross_compiler(tmp_path: Path, tmp_cache: dict[str, str]) -> None:
    """Refused before any source is fetched: one line naming the package, exit 3."""
    recipe = tmp_path / "r.toml"
    for arch in ("arm64", "ppc64le", "i386"):
        recipe.write_text(
            f'[kernel]\nname = "r"\nsource = "debian:linux-source-6.1"\narch = "{arch}"\n\n'
            '[config]\nbase = "tinyconfig"\n'
        )
        empty = tmp_path / "empty-path"
        empty.mkdir(exist_ok=True)
        run = cli("build", recipe, "--out", tmp_path / "out", env={**tmp_cache, "PATH": str(empty)})
        package = get_arch(arch).cross_package
        assert_user_facing_error(run, 3, f"kernel.arch = {arch}", f"{get_arch(arch).triplet}-gcc", package)
        assert len(run.err.strip().splitlines()) == 1
        assert not (Path(tmp_cache["DISTKERNEL_CACHE"]) / "src").exists()
    assert os.environ.get("PATH") and env_with()  # the real PATH is untouched
