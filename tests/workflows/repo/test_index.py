"""repo init / add: a signed index whose serial only grows; variants side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.build.trust.signing import load_trusted
from distkernel.core.errors import UserError
from distkernel.workflows.repo.index import INDEX, init_repo, parse_index, path_problem
from tests.build.trust.helpers import tiny_package
from tests.conftest import assert_user_facing_error, cli


def test_init_add_grows_the_serial_and_keeps_variants_side_by_side(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    init = cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY), "--json")
    assert init.code == 0, init.err
    assert init.json()["serial"] == 1
    plain = tiny_package(tmp_path / "a", key=keys.path(PACKAGE_KEY))
    dracut = tiny_package(tmp_path / "b", key=keys.path(PACKAGE_KEY), variant="dracut")
    added = cli("repo", "add", repo, plain, dracut, "--json")
    assert added.code == 0, added.err
    doc = added.json()
    assert doc["serial"] == 2
    assert sorted(p["variant"] for p in doc["packages"]) == ["", "dracut"]
    again = cli("repo", "add", repo, plain, "--json").json()
    assert again["serial"] == 3 and len(again["packages"]) == 2
    index, _ = parse_index((repo / INDEX).read_bytes(), "test", load_trusted([keys.path(PACKAGE_PUB)]))
    assert index.serial == 3
    for entry in index.entries:
        assert (repo / entry.path).stat().st_size == entry.size


def test_index_signed_by_another_key_is_refused(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    with pytest.raises(UserError, match="not trusted"):
        parse_index((repo / INDEX).read_bytes(), "test", load_trusted([other_keys.path(PACKAGE_PUB)]))


def test_add_refuses_a_corrupt_package_and_a_missing_repo(tmp_path: Path, keys: KeySet) -> None:
    pkg = tiny_package(tmp_path / "p")
    assert_user_facing_error(cli("repo", "add", tmp_path / "nowhere", pkg), 2, "not a distkernel repo")
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    broken = tmp_path / "broken.tar.zst"
    broken.write_bytes(pkg.read_bytes()[:-100])
    assert_user_facing_error(cli("repo", "add", repo, broken), 2)
    assert json.loads((repo / INDEX).read_text())["signed"]["serial"] == 1


def test_add_copies_nothing_when_one_package_is_corrupt(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    good = tiny_package(tmp_path / "g", key=keys.path(PACKAGE_KEY))
    broken = tmp_path / "broken.tar.zst"
    broken.write_bytes(good.read_bytes()[:-100])
    assert_user_facing_error(cli("repo", "add", repo, good, broken), 2, "broken.tar.zst")
    assert list((repo / "packages").iterdir()) == []


def test_add_to_a_repo_without_its_index_is_one_line(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    (repo / INDEX).unlink()
    assert_user_facing_error(cli("repo", "add", repo, tiny_package(tmp_path / "p")), 2, INDEX)


@pytest.mark.parametrize(
    "path",
    ["../secret.tar.zst", "/etc/shadow", "packages/../../x.tar.zst", "packages/sub/x.tar.zst", "index.json"],
)
def test_paths_outside_packages_are_refused(path: str) -> None:
    assert path_problem(path) is not None


def test_package_paths_are_accepted() -> None:
    assert path_problem("packages/qemu-minimal-6.1.192-distkernel-x86_64+dracut.tar.zst") is None


def test_serve_says_where_it_listens_as_json(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    argv = [sys.executable, "-m", "distkernel", "repo", "serve", str(repo), "--port", "0", "--json"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        try:
            doc = json.loads(proc.stdout.readline())
        finally:
            proc.terminate()
    assert doc["serving"] == str(repo) and doc["url"].startswith("http://127.0.0.1:")
