"""Bad input through the real CLI: one line naming what is wrong and the fix, exit 2
(user) or 3 (tool), no package written, no traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from distkernel.core.cache import cache_root, sha256_file
from tests.conftest import DEFAULT_RECIPE, assert_user_facing_error, cli, env_with

RECIPE = """\
[kernel]
name = "bad"
source = "{source}"
sha256 = "{sha}"
patches = [{patches}]

[config]
base = "tinyconfig"
fragments = ["{frag}"]
options = {{ {options} }}
strict = true
"""


def recipe(
    tmp_path: Path,
    source: str = "debian:linux-source-6.1",
    sha: str = "",
    patches: str = "",
    options: str = "",
    extra: str = "",
) -> Path:
    shutil.copy(DEFAULT_RECIPE.parent / "fragments" / "qemu-boot.config", tmp_path / "boot.config")
    path = tmp_path / "bad.toml"
    path.write_text(RECIPE.format(source=source, sha=sha, patches=patches, frag="boot.config", options=options) + extra)
    return path


def build(path: Path, out: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    run = cli("build", path, "--out", out, env=env)
    assert not out.exists() or not any(out.iterdir()), "a package was written"
    return run


def test_unknown_recipe_key(tmp_path: Path) -> None:
    path = recipe(tmp_path, extra="\n[build]\nturbo = true\n")
    assert_user_facing_error(build(path, tmp_path / "out"), 2, f"{path}:14:", "build.turbo: unknown key")


def test_missing_source(tmp_path: Path) -> None:
    path = recipe(tmp_path, source="tarball:nope.tar.xz", sha="0" * 64)
    assert_user_facing_error(build(path, tmp_path / "out"), 2, "kernel.source: tarball not found")


def test_wrong_sha256(tmp_path: Path, fake_tarball: Path, tmp_cache: dict[str, str]) -> None:
    path = recipe(tmp_path, source=f"tarball:{fake_tarball}", sha="1" * 64)
    assert_user_facing_error(build(path, tmp_path / "out", tmp_cache), 2, "kernel.sha256", "the recipe expects 111")


def test_patch_that_does_not_apply(tmp_path: Path, fake_tarball: Path, tmp_cache: dict[str, str]) -> None:
    (tmp_path / "0001-x.patch").write_text(
        "--- a/init/main.c\n+++ b/init/main.c\n@@ -1,2 +1,2 @@\n-nothing\n+here\n x\n"
    )
    path = recipe(tmp_path, source=f"tarball:{fake_tarball}", sha=sha256_file(fake_tarball), patches='"0001-x.patch"')
    run = build(path, tmp_path / "out", tmp_cache)
    assert_user_facing_error(run, 2, "0001-x.patch does not apply", "hunk #1 of init/main.c FAILED")
    assert "rejected hunk:" in run.err


@pytest.mark.kernel
def test_strict_miss_fails_before_compiling(tmp_path: Path) -> None:
    path = recipe(tmp_path, options='CONFIG_KVM = "y"')
    run = build(path, tmp_path / "out")
    assert_user_facing_error(run, 2, "config.strict: 1 requested option(s) did not take")
    assert "CONFIG_KVM: requested y, effective n" in run.err
    logs = list((cache_root() / "build").glob("bad-x86_64-*/logs/build.log"))
    assert not logs, "make ran after a strict miss"


def test_bad_base_target_suggests_close_names(tmp_path: Path) -> None:
    path = recipe(tmp_path).read_text().replace('base = "tinyconfig"', 'base = "tinyconfg"')
    (tmp_path / "bad.toml").write_text(path)
    run = cli("config", tmp_path / "bad.toml")
    assert_user_facing_error(run, 2, "config.base: `tinyconfg` is not a config target", "did you mean tinyconfig")


def test_missing_tool(tmp_path: Path) -> None:
    """A PATH with every tool but make."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(":"):
        for tool in Path(d).glob("*") if Path(d).is_dir() else []:
            if tool.name != "make" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    run = build(recipe(tmp_path), tmp_path / "out", env_with(PATH=str(bin_dir)))
    assert_user_facing_error(
        run, 3, "required tool `make` not found", "apt-get install -y --no-install-recommends make"
    )


def test_corrupt_package(tmp_path: Path) -> None:
    junk = tmp_path / "x.tar.zst"
    junk.write_bytes(b"\x28\xb5\x2f\xfd garbage")
    assert_user_facing_error(cli("inspect", junk), 2, "not a readable distkernel package")
    assert_user_facing_error(cli("verify", junk), 2, "not a readable distkernel package")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            ('name = "bad"', 'name = "bad"\nlocalversion = "-x\\nCONFIG_MODULES=n"'),
            "kernel.localversion: holds a newline",
        ),
        (('"debian:linux-source-6.1"', '"dir:/"'), "kernel.source: dir:/ is a system folder"),
        (("strict = true", "strict = true\n[test]\nmodules = " + "[" * 5000 + "]" * 5000), "nested too deeply"),
        (('name = "bad"', f'name = "{"n" * 100_000}"'), "a value of 100000 characters"),
        (('"boot.config"', '"../../etc/passwd.config"'), "config.fragments: '../../etc/passwd.config' leaves"),
    ],
    ids=["localversion-newline", "dir-root", "nesting", "long-name", "fragment-escape"],
)
def test_hostile_recipe_is_one_line_before_any_work(tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    path = recipe(tmp_path)
    path.write_text(path.read_text().replace(*edit))
    for command in (("config", path), ("build", path, "--out", tmp_path / "out")):
        run = cli(*command, env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
        assert_user_facing_error(run, 2, needle)
        assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache" / "src").exists()
