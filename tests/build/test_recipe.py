from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.recipe import find_line, load_recipe
from distkernel.core.errors import UserError
from tests.conftest import DEFAULT_RECIPE

GOOD = """\
[kernel]
name = "k"
source = "debian:linux-source-6.1"
arch = "x86_64"

[config]
base = "tinyconfig"
fragments = ["a.config"]
options = { TEST_LKM = "m", CONFIG_PRINTK = true, CONFIG_NR_CPUS = 4, CONFIG_CMDLINE = "console=ttyS0" }
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "a.config").write_text("CONFIG_TTY=y\n")
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_default_recipe_loads() -> None:
    r = load_recipe(DEFAULT_RECIPE)
    assert r.kernel.name == "qemu-minimal"
    assert r.config.options == {"CONFIG_TEST_LKM": "m"}
    assert all(p.is_file() for p in r.config.fragments)
    assert r.config.strict and r.build.ccache
    assert r.test.modules == ("test_module",)


def test_paths_resolve_against_the_recipe_folder_and_options_normalize(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, GOOD))
    assert r.config.fragments == (tmp_path / "a.config",)
    assert r.config.options == {
        "CONFIG_TEST_LKM": "m",
        "CONFIG_PRINTK": "y",
        "CONFIG_NR_CPUS": "4",
        "CONFIG_CMDLINE": '"console=ttyS0"',
    }


@pytest.mark.parametrize(
    ("edit", "needle", "line"),
    [
        (('arch = "x86_64"', 'arch = "x86_64"\ncolour = "red"'), "kernel.colour: unknown key", 5),
        (('base = "tinyconfig"', "base = 3"), "config.base: must be a str, not int", 7),
        (('["a.config"]', '["missing.config"]'), "config.fragments: file not found", 8),
        (('"debian:linux-source-6.1"', '"ftp:x"'), "kernel.source: `ftp:x` must be one of", 3),
        (('"debian:linux-source-6.1"', '"tarball:x.tar"'), "kernel.sha256: a tarball: source needs its sha256", 1),
        (('name = "k"', 'name = "a/b"'), "kernel.name: `a/b` may only hold", 2),
        (('arch = "x86_64"', 'arch = "vax"'), "kernel.arch: unknown arch `vax`", 4),
        (("TEST_LKM", "BAD-NAME"), "config.options: `BAD-NAME` is not a Kconfig symbol name", 9),
    ],
)
def test_errors_name_file_key_and_line(tmp_path: Path, edit: tuple[str, str], needle: str, line: int) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(UserError) as e:
        load_recipe(path)
    assert e.value.message.startswith(f"{path}:{line}: "), e.value.message
    assert needle in e.value.message


def test_unknown_table_and_missing_table(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"\[extra\]: unknown table"):
        load_recipe(write(tmp_path, GOOD + "\n[extra]\nx = 1\n"))
    with pytest.raises(UserError, match=r"missing table \[config\]"):
        load_recipe(write(tmp_path, GOOD.split("[config]")[0]))


def test_not_toml_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(write(tmp_path, "[kernel\n"))
    with pytest.raises(UserError, match="cannot read recipe"):
        load_recipe(tmp_path / "nope.toml")


def test_find_line_handles_dotted_keys() -> None:
    text = "[kernel]\nname = 'x'\n[config]\nbase = 'y'\noptions.CONFIG_A = 'y'\n"
    assert find_line(text, "config", "options") == 5
    assert find_line(text, "config", "base") == 4
    assert find_line(text, "kernel") == 1
