"""[build] distribute and hosts in the recipe reader, and `build --distcc` on the command
line: refusals of bad values, and where-it-compiles kept out of the recipe's identity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from distkernel.build.recipe import load_recipe
from distkernel.core.errors import UserError
from tests.conftest import DEFAULT_RECIPE, Built, assert_user_facing_error, cli, env_with

RECIPE = """\
[kernel]
name = "k"
source = "debian:linux-source-6.1"

[config]
base = "tinyconfig"

[build]
ccache = true
{build}
[test]
modules = []
"""


def write(tmp_path: Path, build: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(build=build))
    return path


def test_distribute_reads_backend_and_hosts(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, 'distribute = "distcc"\nhosts = ["b1/8", "b2:3633/4,lzo,cpp", "localhost/2"]\n'))
    assert r.build.distribute == "distcc"
    assert r.build.hosts == ("b1/8", "b2:3633/4,lzo,cpp", "localhost/2")
    assert load_recipe(write(tmp_path, "")).build.distribute == "local"


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"r.toml:10: build.distribute: unknown backend `ssh` \(known: local, distcc"):
        load_recipe(write(tmp_path, 'distribute = "ssh"\n'))


@pytest.mark.parametrize(
    "word",
    ["user@host", "host:", "host:0", "host:70000", "host/0", "host/x", "-host", "host,gzip", "a b", "[::1]", ""],
)
def test_host_that_is_not_a_distcc_host_word_is_refused(tmp_path: Path, word: str) -> None:
    with pytest.raises(UserError, match=r"build.hosts: .* is not a distcc host \(HOST\[:PORT\]\[/LIMIT\]"):
        load_recipe(write(tmp_path, f'distribute = "distcc"\nhosts = ["ok/2", "{word}"]\n'))


def test_hosts_without_distcc_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"build.hosts: hosts are distcc's; .*icecream's scheduler picks"):
        load_recipe(write(tmp_path, 'distribute = "icecream"\nhosts = ["b1"]\n'))
    with pytest.raises(UserError, match=r'build.hosts: hosts are distcc\'s; with distribute = "local"'):
        load_recipe(write(tmp_path, 'hosts = ["b1"]\n'))


def test_where_it_compiles_is_not_part_of_the_recipe_identity(tmp_path: Path) -> None:
    """Moving a build to other hosts (or to icecream, or back home) keeps the recipe's
    sha256, so the package key and the package's metadata."""
    plain = load_recipe(write(tmp_path, "")).sha256
    for build in (
        'distribute = "distcc"\nhosts = ["b1/8"]\n',
        'hosts = [\n    "b1/8",\n    "b2:3633/4",\n]\ndistribute = "distcc"  # the farm\n',
        'distribute = "icecream"\n',
        'distribute = "local"\n',
    ):
        assert load_recipe(write(tmp_path, build)).sha256 == plain, build
    # What does change the package still counts.
    assert load_recipe(write(tmp_path, "jobs = 3\n")).sha256 != plain


def test_where_keys_that_cannot_be_cut_out_count_whole(tmp_path: Path) -> None:
    """An unusual spelling (a dotted key outside [build]) is hashed with the whole file:
    a needless rebuild at worst, never another recipe's cached package."""
    path = tmp_path / "r.toml"
    text = RECIPE.format(build="").replace("[build]\nccache = true\n", "")
    path.write_text('build.distribute = "distcc"\n' + text)
    r = load_recipe(path)
    assert r.build.distribute == "distcc"
    assert r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_distcc_with_bad_hosts_is_refused() -> None:
    run = cli("build", DEFAULT_RECIPE, "--distcc", "good/4 user@bad")
    assert_user_facing_error(run, 2, "--distcc: 'user@bad' is not a distcc host")
    run = cli("build", DEFAULT_RECIPE, "--distcc", " ")
    assert_user_facing_error(run, 2, "--distcc: no distcc host given")


@pytest.mark.kernel
def test_distcc_hosts_are_not_part_of_the_package_key(default_package: Built, tmp_path: Path) -> None:
    """`--distcc` (and DISTCC_HOSTS) only say where objects compile: the default recipe
    built that way is the cached default package, make not run."""
    env = env_with(DISTCC_HOSTS="elsewhere/2")
    run = cli("build", DEFAULT_RECIPE, "--distcc", "127.0.0.1:1/4 h2/8", "--out", tmp_path, "--json", env=env)
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["cached"] and doc["key"] == default_package.first_run["key"]
    assert doc["distributed"] is None  # nothing compiled, so nothing to report
