"""The habits of the neighbouring tools: -V, embedded recipes, a settings file for
defaults, dry runs that print the plan, remove that keeps a default, completion and a
man page generated from the commands themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from distkernel import __version__
from distkernel.cli import command_tree
from distkernel.cli.shell import generated_files
from tests.conftest import assert_user_facing_error, cli, env_with
from tests.target.install.helpers import fake_package, make_root


def tree(root: Path) -> dict[str, bytes | str]:
    return {
        str(p.relative_to(root)): (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir")
        for p in sorted(root.rglob("*"))
    }


def test_version() -> None:
    for flag in ("-V", "--version"):
        run = cli(flag)
        assert run.code == 0 and run.out.strip() == f"distkernel, version {__version__}"


def test_recipe_list_and_new_work_from_the_package_data(tmp_path: Path) -> None:
    doc = cli("recipe", "list", "--json").json()
    names = {r["name"]: r for r in doc["recipes"]}
    assert "qemu-minimal" in names and Path(names["qemu-minimal"]["path"]).is_file()
    assert names["qemu-minimal"]["about"].endswith("and can mount a virtio-blk ext4 root")  # the whole sentence
    assert Path(doc["folder"]).is_relative_to(Path(sys.modules["distkernel"].__file__ or "").parent)
    run = cli("recipe", "new", "my-kernel", "--from", "qemu-minimal", "--dir", tmp_path / "r", "--json")
    assert run.code == 0, run.err
    made = Path(run.json()["recipe"])
    assert 'name = "my-kernel"' in made.read_text()
    assert all(Path(f).is_file() for f in run.json()["files"]) and run.json()["files"]
    before = tree(tmp_path)
    again = cli("recipe", "new", "my-kernel", "--dir", tmp_path / "r")
    assert_user_facing_error(again, 2, "my-kernel.toml: already exists")
    assert tree(tmp_path) == before
    assert_user_facing_error(cli("recipe", "new", "x", "--from", "nope"), 2, "--from nope: no such embedded recipe")
    assert_user_facing_error(cli("recipe", "new", "../x"), 2, "recipe new ../x: a name is letters")


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return fake_package(tmp_path, "6.1.0-a")


def settings(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "distkernel.toml"
    path.write_text(text)
    return env_with(DISTKERNEL_CONFIG=str(path))


def test_settings_file_gives_defaults_and_the_cli_wins(tmp_path: Path, pkg: Path) -> None:
    root = make_root(tmp_path / "root")
    env = settings(tmp_path, 'layout = "bls"\nkeep = 2\ninitramfs = "none"\n')
    plan = cli("install", pkg, "--root", root, "--dry-run", "--json", env=env).json()
    assert plan["layout"] == "bls" and plan["details"]["initramfs"] == "none"
    plan = cli("install", pkg, "--root", root, "--dry-run", "--json", "--layout", "plain", env=env).json()
    assert plan["layout"] == "plain"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("layuot = 'bls'\n", "layuot: unknown key; known keys: binhost, layout"),
        ("keep = 'two'\n", "keep: must be a int, not str"),
        ("layout = 'lilo'\n", "layout = 'lilo': not one of"),
        ("layout = \n", "not valid TOML"),
    ],
)
def test_a_bad_settings_file_is_named(tmp_path: Path, text: str, needle: str) -> None:
    env = settings(tmp_path, text)
    assert_user_facing_error(cli("list", "--root", tmp_path, env=env), 2, f"{tmp_path / 'distkernel.toml'}", needle)


def test_a_settings_file_that_does_not_exist(tmp_path: Path) -> None:
    env = env_with(DISTKERNEL_CONFIG=str(tmp_path / "none.toml"))
    assert_user_facing_error(cli("list", "--root", tmp_path, env=env), 2, "$DISTKERNEL_CONFIG=", "no such file")


def test_install_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path, pkg: Path) -> None:
    root = make_root(tmp_path / "root")
    before = tree(root)
    run = cli("install", pkg, "--root", root, "--layout", "bls", "--dry-run", "--json")
    assert run.code == 0, run.err
    plan = run.json()
    assert tree(root) == before
    assert plan["dry_run"] and plan["release"] == "6.1.0-a" and plan["layout"] == "bls"
    human = cli("install", pkg, "--root", root, "--layout", "bls", "--dry-run")
    assert "would install 6.1.0-a" in human.out and human.out.rstrip().endswith("dry run: nothing was changed")
    assert cli("install", pkg, "--root", root, "--layout", "bls").code == 0
    for path in plan["place"] + plan["rewrite"]:
        assert (root / path).exists(), path  # the plan named what install placed


def test_remove_dry_run_and_the_default_moves_on(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    for rel in ("6.1.0-a", "6.1.0-b"):
        (tmp_path / rel).mkdir()
        assert cli("install", fake_package(tmp_path / rel, rel), "--root", root, "--layout", "bls").code == 0
    loader = next(root.rglob("loader.conf"))
    assert "default 0123456789abcdef0123456789abcdef-*" in loader.read_text()  # 6.1.0-b on trial
    before = tree(root)
    plan = cli("remove", "6.1.0-b", "--root", root, "--dry-run", "--json").json()
    assert tree(root) == before
    assert plan["details"]["default"] == "6.1.0-a (was 6.1.0-b)"
    run = cli("remove", "6.1.0-b", "--root", root, "--json")
    assert run.code == 0 and run.json()["default"] == "6.1.0-a"
    assert all(not (root / p).exists() for p in plan["remove"])
    assert loader.read_text().splitlines()[-1] == "default 0123456789abcdef0123456789abcdef-*"  # 6.1.0-a on trial
    before = tree(root)
    last = cli("remove", "6.1.0-a", "--root", root)
    assert_user_facing_error(last, 2, "6.1.0-a is the last kernel distkernel installed there", "pass --force")
    assert tree(root) == before
    assert cli("remove", "6.1.0-a", "--root", root, "--force").code == 0
    assert "6.1.0-a" not in loader.read_text()  # loader.conf no longer names a removed entry
    assert cli("list", "--root", root, "--json").json() == {"default": None, "kernels": []}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    run = cli("completion", shell)
    assert run.code == 0 and "_DISTKERNEL_COMPLETE" in run.out


def test_completion_completes_commands_and_options() -> None:
    env = env_with(_DISTKERNEL_COMPLETE="bash_complete", COMP_WORDS="distkernel ins", COMP_CWORD="1")
    proc = subprocess.run([sys.executable, "-m", "distkernel"], env=env, capture_output=True, text=True, check=False)
    assert "plain,install" in proc.stdout, proc
    env.update(COMP_WORDS="distkernel install --dry", COMP_CWORD="2")
    proc = subprocess.run([sys.executable, "-m", "distkernel"], env=env, capture_output=True, text=True, check=False)
    assert "plain,--dry-run" in proc.stdout, proc


def test_man_page_names_every_command() -> None:
    page = cli("man").out
    assert page.startswith(".TH DISTKERNEL 1")
    leaves = [name for name, cmd in command_tree().items() if name and not isinstance(cmd, click.Group)]
    assert "repo serve" in leaves and "install" in leaves
    for name in leaves:
        assert f'.SS "distkernel {name}"'.replace("-", "\\-") in page, name


def test_shipped_man_page_and_completions_are_current() -> None:
    for path, text in generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run `distkernel man --write-data`"
