"""Recipe inputs are checked before the source is prepared: a typo costs no extraction
and no kernel tree (these tests run with an empty cache and never create a source)."""

from __future__ import annotations

from pathlib import Path

from tests.build.config.conftest import write_recipe
from tests.conftest import assert_user_facing_error, cli, env_with


def test_a_fragment_typo_is_found_before_the_source(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path, 'base = "tinyconfig"\nfragments = ["f.config"]', {"f.config": "CONFIG_A=y\nKVM y\n"}
    )
    cache = tmp_path / "cache"
    for command in ("config", "build"):
        run = cli(command, recipe, env=env_with(DISTKERNEL_CACHE=str(cache)))
        assert_user_facing_error(run, 2, "f.config:2: not a config line")
    assert not (cache / "src").exists()


def test_an_unknown_feature_is_found_before_the_source(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, 'base = "tinyconfig"\nfeatures = ["dockr"]')
    cache = tmp_path / "cache"
    for command in ("config", "build"):
        run = cli(command, recipe, env=env_with(DISTKERNEL_CACHE=str(cache)))
        assert_user_facing_error(run, 2, "config.features: unknown feature `dockr`")
    assert not (cache / "src").exists()
