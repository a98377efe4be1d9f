"""`distkernel bump` against a kernel.org-style mirror made here (signed with a key made
here, served on 127.0.0.1): several series at once, pins rewritten in place, a
changelog entry, one commit per series; nothing new changes nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from distkernel.workflows.bump import edit_kernel_values
from tests.conftest import assert_user_facing_error, cli, env_with
from tests.feedmirror import Mirror, make_key, serving, url_recipe


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Mirror, Path, Path]]:
    keyring = make_key(tmp_path / "keys" / "home", "signer")
    m = Mirror(tmp_path / "mirror", tmp_path / "keys" / "home")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    with serving(m):
        old61 = m.add("6.1.7", tmp_path / "work")
        old66 = m.add("6.6.3", tmp_path / "work")
        url_recipe(recipes / "a61.toml", m, "6.1.7", old61, keyring, extra='localversion = "-a"  # kept\n')
        url_recipe(recipes / "b61.toml", m, "6.1.7", old61, keyring)
        url_recipe(recipes / "c66.toml", m, "6.6.3", old66, keyring)
        subprocess.run(["git", "init", "-q", recipes], check=True)
        git(recipes, "add", ".")
        git(recipes, "commit", "-qm", "recipes")
        yield m, keyring, recipes


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    import os

    done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bump_moves_several_series_and_commits_each(world: tuple[Mirror, Path, Path], tmp_path: Path) -> None:
    m, _, recipes = world
    new61 = m.add("6.1.8", tmp_path / "work")
    new66 = m.add("6.6.4", tmp_path / "work")
    env = env_with(
        DISTKERNEL_CACHE=str(tmp_path / "cache"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    run = cli("bump", "recipes", "--commit", "--json", env=env, cwd=recipes.parent)  # a relative folder
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    moved = {Path(b["recipe"]).name: (b["from"], b["to"]) for b in doc["bumped"]}
    assert moved == {"a61.toml": ("6.1.7", "6.1.8"), "b61.toml": ("6.1.7", "6.1.8"), "c66.toml": ("6.6.3", "6.6.4")}
    a = (recipes / "a61.toml").read_text()
    assert f'sha256 = "{new61}"' in a and 'version = "6.1.8"' in a and 'linux-6.1.8.tar.xz"  # the tarball' in a
    assert 'localversion = "-a"  # kept' in a and a.startswith("# a recipe following")
    assert f'sha256 = "{new66}"' in (recipes / "c66.toml").read_text()
    log = git(recipes, "log", "--format=%s", "-3").splitlines()
    assert log == ["linux 6.6: bump to 6.6.4", "linux 6.1: bump to 6.1.8", "recipes"]
    assert git(recipes, "status", "--porcelain") == ""
    changelog = (recipes / "CHANGELOG.md").read_text()
    assert "linux 6.1: 6.1.7 -> 6.1.8" in changelog and "- b61.toml: 6.1.7 -> 6.1.8" in changelog
    # the bumped recipe builds its new source, verified
    from distkernel.build.recipe import load_recipe

    assert load_recipe(recipes / "a61.toml").kernel.version == "6.1.8"
    again = cli("bump", recipes, "--json", env=env)
    assert again.code == 0 and json.loads(again.out)["bumped"] == []
    assert git(recipes, "status", "--porcelain") == ""


def test_bump_of_one_series_leaves_the_others(world: tuple[Mirror, Path, Path], tmp_path: Path) -> None:
    m, _, recipes = world
    m.add("6.1.8", tmp_path / "work")
    m.add("6.6.4", tmp_path / "work")
    run = cli("bump", recipes, "--series", "6.6", env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
    assert run.code == 0, run.err
    assert 'version = "6.1.7"' in (recipes / "a61.toml").read_text()
    assert 'version = "6.6.4"' in (recipes / "c66.toml").read_text()


def test_bump_refuses_a_feed_signed_by_another_key(world: tuple[Mirror, Path, Path], tmp_path: Path) -> None:
    m, _, recipes = world
    m.add("6.1.8", tmp_path / "work")
    make_key(tmp_path / "other" / "home", "intruder")
    m.resign(tmp_path / "other" / "home")
    before = {p.name: p.read_text() for p in recipes.glob("*.toml")}
    run = cli("bump", recipes, env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
    assert_user_facing_error(run, 2, "bad signature", "sha256sums.asc")
    assert {p.name: p.read_text() for p in recipes.glob("*.toml")} == before


def test_bump_with_nothing_new_changes_nothing(world: tuple[Mirror, Path, Path], tmp_path: Path) -> None:
    _, _, recipes = world
    run = cli("bump", recipes, env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
    assert run.code == 0, run.err
    assert "nothing new" in run.out
    assert git(recipes, "status", "--porcelain") == ""


def test_bump_commit_outside_git_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    run = cli("bump", tmp_path / "r", "--commit", env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
    assert_user_facing_error(run, 2, "--commit needs the recipes in a git repository")


def test_edit_keeps_comments_and_adds_a_missing_key() -> None:
    text = '# top\n[kernel]\nname = "x"\nsource = "debian:linux-source-6.12"  # series\n\n[config]\nbase = "t"\n'
    out = edit_kernel_values(text, {"version": "6.12.117-1~deb12u1"})
    assert out == text.replace("# series\n", '# series\nversion = "6.12.117-1~deb12u1"\n')
    assert edit_kernel_values(out, {"version": "6.12.118-1"}) == out.replace("117-1~deb12u1", "118-1")
