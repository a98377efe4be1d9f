from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.recipe import load_recipe
from distkernel.build.recipe_model import find_line
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


def load_error(path: Path) -> str:
    """The one-line message load_recipe refuses PATH with."""
    with pytest.raises(UserError) as e:
        load_recipe(path)
    message = e.value.message
    assert "\n" not in message and not e.value.details, message
    assert len(message) < 600, message
    return message


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            ('arch = "x86_64"', 'arch = "x86_64"\nlocalversion = "-x\\nCONFIG_MODULES=n"'),
            "kernel.localversion: holds a",
        ),
        (('arch = "x86_64"', 'arch = "x86_64"\nlocalversion = "-x y"'), "kernel.localversion: `-x y` may only hold"),
        (('name = "k"', 'name = "k\\u2028"'), "kernel.name: holds a newline"),
        (('"console=ttyS0"', '"console=ttyS0\\nCONFIG_MODULES=n"'), "config.options: holds a newline"),
        (('"console=ttyS0"', '\'"a"b"\''), "config.options: CONFIG_CMDLINE: a quoted value must escape"),
        (('base = "tinyconfig"', 'base = "tiny\\tconfig"'), "config.base: holds a newline or another control"),
        (('["a.config"]', '["../outside.config"]'), "config.fragments: '../outside.config' leaves the recipe's folder"),
        (('["a.config"]', '["sub/../../outside.config"]'), "leaves the recipe's folder"),
        (('["a.config"]', '["secret"]'), "config.fragments: 'secret' is not a .config file"),
        (('arch = "x86_64"', 'arch = "x86_64"\npatches = ["../x.patch"]'), "kernel.patches: '../x.patch' leaves"),
        (('base = "tinyconfig"', 'base = "file:../outside.config"'), "config.base: file: leaves the recipe's folder"),
        (('"debian:linux-source-6.1"', '"dir:/"'), "kernel.source: dir:/ is a system folder"),
        (('"debian:linux-source-6.1"', '"dir:/etc"'), "kernel.source: dir:/etc is a system folder"),
        (('"debian:linux-source-6.1"', '"dir:/proc/self"'), "is a system folder"),
        (('"debian:linux-source-6.1"', '"dir:."'), "is not a kernel tree (no Makefile at its top)"),
    ],
)
def test_hostile_values_are_refused_in_one_line(tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    (tmp_path.parent / f"{tmp_path.name}-outside.config").write_text("CONFIG_X=y\n")
    (tmp_path / "outside.config").write_text("CONFIG_X=y\n")  # exists, but the path escapes first
    (tmp_path / "secret").write_text("TOPSECRET\n")
    message = load_error(write(tmp_path, GOOD.replace(*edit)))
    assert needle in message, message
    assert "TOPSECRET" not in message


def test_a_path_escaping_through_a_symlink_is_refused_and_an_absolute_one_is_taken(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.config").write_text("CONFIG_X=y\n")
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "link").symlink_to(outside)
    (recipe_dir / "a.config").write_text("CONFIG_TTY=y\n")
    path = recipe_dir / "r.toml"
    path.write_text(GOOD.replace('["a.config"]', '["link/b.config"]'))
    assert "leaves the recipe's folder" in load_error(path)
    path.write_text(GOOD.replace('["a.config"]', f'["{outside / "b.config"}"]'))
    assert load_recipe(path).config.fragments == (outside / "b.config",)


def test_a_secret_file_named_as_a_fragment_is_never_echoed(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$y$j9T$secrethash:19000:0:99999:7:::\n")
    message = load_error(write(tmp_path, GOOD.replace('["a.config"]', f'["{secret}"]')))
    assert "secrethash" not in message and "is not a .config file" in message


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: GOOD.replace('name = "k"', f'name = "{"a" * 1_000_000}"'), "larger than 256 KiB"),
        (lambda: GOOD.replace('name = "k"', f'name = "{"a" * 5000}"'), "a value of 5000 characters"),
        (lambda: GOOD.replace('name = "k"', f'name = "{"a" * 65}"'), "at most 64"),
        (lambda: GOOD + "\n[test]\nmodules = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (
            lambda: (
                GOOD.split("[config]")[0]
                + '[config]\nbase = "tinyconfig"\n[config.options]\n'
                + "".join(f'CONFIG_X{i} = "y"\n' for i in range(10_000))
            ),
            "config.options: has 10000 entries; at most 4096",
        ),
        (lambda: GOOD.replace('["a.config"]', "[" + ", ".join(['"a.config"'] * 5000) + "]"), "at most 4096"),
    ],
    ids=["1MB-name", "long-value", "long-name", "nesting", "many-options", "many-fragments"],
)
def test_sizes_and_nesting_are_bounded(tmp_path: Path, make: object, needle: str) -> None:
    assert callable(make)
    message = load_error(write(tmp_path, make()))
    assert needle in message, message


def test_a_recipe_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    assert "not a regular file" in load_error(Path("/dev/zero"))
    assert "cannot read recipe" in load_error(tmp_path)


def test_a_shipped_fragment_is_named_with_distkernel_prefix(tmp_path: Path) -> None:
    """`distkernel:fragments/X.config` is a fragment of the shipped recipes; it cannot
    be used to leave that folder."""
    recipe = tmp_path / "r.toml"
    body = '[kernel]\nname = "x"\nsource = "debian:linux-source-6.1"\n[config]\nbase = "tinyconfig"\n'
    recipe.write_text(body + 'fragments = ["distkernel:fragments/qemu-boot.config"]\n')
    [fragment] = load_recipe(recipe).config.fragments
    assert fragment == (DEFAULT_RECIPE.parent / "fragments/qemu-boot.config").resolve()
    recipe.write_text(body + 'fragments = ["distkernel:../../../core/data/x.config"]\n')
    with pytest.raises(UserError, match="leaves the recipe's folder"):
        load_recipe(recipe)


def test_a_file_of_the_running_system_is_no_recipe_input(tmp_path: Path) -> None:
    """/proc, /sys, /dev and /run hold no patches or fragments, even named absolute."""
    recipe = tmp_path / "r.toml"
    body = '[kernel]\nname = "x"\nsource = "debian:linux-source-6.1"\npatches = ["/proc/self/environ"]\n'
    recipe.write_text(body + '[config]\nbase = "tinyconfig"\n')
    with pytest.raises(UserError, match="is a file of the running system"):
        load_recipe(recipe)
