"""`distkernel bump` against a kernel.org-style mirror made here (signed with a key made
here, served on 127.0.0.1): several series at once, pins rewritten in place, a
changelog entry, one commit per series; nothing new changes nothing. A savedconfig
brought forward across series on real Debian trees (6.1 to 6.12)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from distkernel.build.feeds import debian
from distkernel.workflows.bump import edit_kernel_values
from tests.conftest import Built, assert_user_facing_error, cli, env_with
from tests.feedmirror import Mirror, make_key, serving, url_recipe
from tests.hostile import snapshot


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


def test_bump_writes_nothing_when_a_savedconfig_cannot_be_brought_forward(
    world: tuple[Mirror, Path, Path], tmp_path: Path
) -> None:
    """The mirror's tiny trees have no Kconfig: the config upgrade fails after the feed
    answered, and the folder stays as it was (no pin moved, no config, no changelog)."""
    m, _, recipes = world
    m.add("6.1.8", tmp_path / "work")
    (recipes / "saved").mkdir()
    (recipes / "saved" / "config-6.1.7").write_text("CONFIG_64BIT=y\n")
    with open(recipes / "a61.toml", "a") as f:
        f.write('savedconfig = "saved"\n')
    before = snapshot(recipes)
    run = cli("bump", recipes, env=env_with(DISTKERNEL_CACHE=str(tmp_path / "cache")))
    assert run.code in (2, 3) and "Traceback" not in run.err, run.err
    assert run.err.startswith("distkernel: error: "), run.err
    assert snapshot(recipes) == before


def kconfig_new(tree: Path, config: Path, work: Path) -> list[str]:
    """What Kbuild's own `make listnewconfig` asks of CONFIG on TREE."""
    work.mkdir(parents=True, exist_ok=True)
    (work / ".config").write_text(config.read_text())
    done = subprocess.run(
        ["make", "-s", "-C", tree, f"O={work}", "ARCH=x86_64", "listnewconfig"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split("=", 1)[0] for line in done.stdout.splitlines() if line.startswith("CONFIG_")]


def test_bump_brings_a_savedconfig_forward_on_real_debian_trees(default_package: Built, tmp_path: Path) -> None:
    """A recipe pinned to an older linux-source-6.12 of Debian's archive whose savedconfig
    holds a real 6.1 config (the default kernel's): bump moves the pin and brings the
    config forward on the real 6.12 tree. The new questions are exactly what Kbuild's
    listnewconfig asks, each with the value olddefconfig chose, in the output, the
    changelog and the commit message; the new config leaves Kbuild nothing to ask."""
    name = "linux-source-6.12"
    found = debian.versions(name)
    assert len(found) >= 2, f"apt knows {found} of {name}: run apt-get update"
    old, newest = found[1], found[0]
    kernels = tmp_path / "kernels"
    (kernels / "saved").mkdir(parents=True)
    old_config = kernels / "saved" / f"config-{default_package.metadata['version']}"
    with open(default_package.package, "rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if info.name == "kernel/config":
                    old_config.write_bytes(tar.extractfile(info).read())  # type: ignore[union-attr]
                    break
    (kernels / "sc.toml").write_text(
        f'[kernel]\nname = "sc"\nsource = "debian:{name}"\nversion = "{old}"\narch = "x86_64"\n\n'
        '[config]\nsavedconfig = "saved"\n'
    )
    subprocess.run(["git", "init", "-q", kernels], check=True)
    git(kernels, "add", ".")
    git(kernels, "commit", "-qm", "recipes")
    env = env_with(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    run = cli("bump", kernels, "--commit", "--json", env=env)
    assert run.code == 0, run.err
    (bumped,) = json.loads(run.out)["bumped"]
    new_config = kernels / "saved" / f"config-{debian.upstream(newest)}"
    assert (bumped["from"], bumped["to"], bumped["config"]) == (old, newest, str(new_config))
    asked = {q["option"]: q["value"] for q in bumped["questions"]}

    from distkernel.build.config.values import read_config
    from distkernel.build.recipe import load_recipe
    from distkernel.build.source import prepare_source

    tree = prepare_source(load_recipe(kernels / "sc.toml")).path  # the pinned 6.12 tree, from the cache
    assert asked and set(asked) == set(kconfig_new(tree, old_config, tmp_path / "o1"))
    values = read_config(new_config)
    assert all(values.get(option, "n") == value for option, value in asked.items())
    assert kconfig_new(tree, new_config, tmp_path / "o2") == []
    changelog = (kernels / "CHANGELOG.md").read_text()
    message = git(kernels, "log", "-1", "--format=%B")
    assert message.startswith(f"linux 6.12: bump to {newest}\n")
    for option, value in asked.items():
        assert f"new question {option}={value}" in changelog and f"  {option}={value}" in message
    assert git(kernels, "status", "--porcelain") == ""
    assert new_config.name in git(kernels, "show", "--stat", "--format=", "HEAD")
