"""Hostile recipes made by a generator (Hypothesis) from the default recipe: one field set
to a hostile value, or the file made huge or deeply nested. Reading a recipe and checking
its inputs (all that happens before a kernel tree is touched) either accepts it, and
then no string that reaches a .config or a command line holds a newline or a control
character, and every fragment is a file the recipe may name, or refuses it with a
one-line UserError that echoes no file's content; never another exception. The test's
timeout bounds the time (a 100k-option recipe once took over ten minutes)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distkernel.build.config.inputs import check_inputs
from distkernel.build.recipe import load_recipe
from distkernel.core.errors import UserError
from tests.conftest import DEFAULT_RECIPE
from tests.hostile import Tally

EXAMPLES = int(os.environ.get("DISTKERNEL_FUZZ_EXAMPLES", "25")) * 8  # in-process: cheap
TALLY = Tally("recipes")
SECRET = "secret-first-line-never-echoed"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

HOSTILE_TEXT = [
    "a\nCONFIG_MODULES=n",
    "-x\x00y",
    "-\x1b[31mred",
    "../../../../etc",
    "/etc/shadow",
    "a" * 1_000_000,
    "",
    " ",
    "name with spaces",
    '"quoted"',
]
SOURCES = ["dir:/", "dir:/proc", "dir:/sys", "dir:/etc", "dir:..", "url:file:///etc/shadow", "debian:../../x", "x:y"]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\x00", "\\u0000") + '"'


def _field(table: str, key: str, value: str) -> str:
    return f"[{table}]\n{key} = {value}\n"


BASE = {
    "kernel": {"name": '"qemu-minimal"', "source": '"debian:linux-source-6.1"', "arch": '"x86_64"'},
    "config": {"base": '"tinyconfig"', "fragments": '["fragments/qemu-boot.config"]'},
}


def _recipe(overrides: dict[tuple[str, str], str], extra: str = "") -> str:
    tables: dict[str, dict[str, str]] = {t: dict(kv) for t, kv in BASE.items()}
    for (table, key), value in overrides.items():
        tables.setdefault(table, {})[key] = value
    body = "".join(f"[{t}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for t, kv in tables.items())
    return body + extra


def string_fields() -> st.SearchStrategy[str]:
    where = st.sampled_from(
        [
            ("kernel", "name"),
            ("kernel", "localversion"),
            ("kernel", "variant"),
            ("kernel", "arch"),
            ("config", "base"),
            ("kernel", "source"),
            ("kernel", "version"),
            ("kernel", "feed"),
        ]
    )
    value = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=30)
    return st.builds(lambda w, v: _recipe({w: _quote(v)}), where, value)


def sources() -> st.SearchStrategy[str]:
    return st.builds(lambda s: _recipe({("kernel", "source"): _quote(s)}), st.sampled_from(SOURCES))


def paths() -> st.SearchStrategy[str]:
    hostile = st.sampled_from(["../outside/secret.config", "{secret}", "/proc/self/environ", "/dev/zero", "fragments"])
    key = st.sampled_from([("config", "fragments"), ("kernel", "patches")])
    return st.builds(lambda k, p: _recipe({k: "[" + _quote(p) + "]"}), key, hostile)


def options() -> st.SearchStrategy[str]:
    value = st.sampled_from([*HOSTILE_TEXT, "y", "m"]) | st.text(max_size=20)
    name = st.sampled_from(["CONFIG_LSM", "CONFIG_X\nCONFIG_Y", "LSM", "CONFIG_", "../x", "CONFIG_A B"])
    return st.builds(
        lambda n, v: _recipe({("config", "options"): "{ " + _quote(n) + " = " + _quote(v) + " }"}), name, value
    )


def shapes() -> st.SearchStrategy[str]:
    def nested(depth: int) -> str:
        return _recipe({("config", "options"): "{}"}, "[test]\nmodules = " + "[" * depth + "]" * depth + "\n")

    def many(count: int) -> str:
        opts = ", ".join(f"CONFIG_O{i} = 'y'" for i in range(count))
        return _recipe({("config", "options"): "{ " + opts + " }"})

    return st.one_of(
        st.builds(nested, st.sampled_from([10, 500, 5000])),
        st.builds(many, st.sampled_from([10, 20_000, 100_000])),
        st.just(_recipe({}, "[unknown]\nx = 1\n")),
        st.just(_recipe({("kernel", "name"): "1"})),
        st.just("\x00\xff not toml"),
    )


RECIPES = st.one_of(string_fields(), sources(), paths(), options(), shapes())


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("hostile-recipes")
    folder = top / "recipe"
    shutil.copytree(DEFAULT_RECIPE.parent / "fragments", folder / "fragments")
    (top / "outside").mkdir()
    (top / "outside/secret.config").write_text(SECRET + "\n")
    return folder


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=RECIPES)
def test_generated_hostile_recipes(text: str, recipe_dir: Path) -> None:
    secret = recipe_dir.parent / "outside/secret.config"
    path = recipe_dir / "recipe.toml"
    path.write_text(text.replace("{secret}", str(secret)), errors="surrogateescape")
    try:
        recipe = load_recipe(path)
        check_inputs(recipe)
    except UserError as e:
        message = str(e)
        assert "\n" not in message.strip() and SECRET not in message, message
        TALLY.add("refused")
    else:
        k = recipe.kernel
        values = (k.name, k.localversion, k.variant, k.source, k.version, k.feed, recipe.config.base)
        for value in (*values, *recipe.config.options.values()):
            assert not CONTROL.search(value), value
        for fragment in (*recipe.config.fragments, *k.patches):
            assert fragment.is_file() and (fragment.is_relative_to(recipe_dir) or fragment == secret.resolve()), (
                fragment
            )
        TALLY.add("accepted-and-correct")
