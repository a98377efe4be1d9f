"""repo add takes only packages every client can take: signed, with plain names that
keep their file inside packages/; `distkernel sign` signs a package built without a
key, changing only its signature member, byte for byte as a signed build would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.build.trust.signing import signer
from distkernel.workflows.repo.index import name_problem
from tests.build.trust.helpers import tiny_package
from tests.conftest import assert_user_facing_error, cli, env_with
from tests.hostile import snapshot
from tests.target.install.helpers import with_metadata
from tests.workflows.repo.slow import SlowServer


def new_repo(tmp_path: Path, keys: KeySet) -> Path:
    repo = tmp_path / "repo"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    return repo


def test_add_refuses_an_unsigned_package_and_says_how_to_sign_it(tmp_path: Path, keys: KeySet) -> None:
    repo = new_repo(tmp_path, keys)
    pkg = tiny_package(tmp_path / "p")
    before = snapshot(repo)
    run = cli("repo", "add", repo, pkg)
    assert_user_facing_error(run, 2, "not signed", f"distkernel sign {pkg} --key")
    assert snapshot(repo) == before
    assert cli("sign", "--help").code == 0  # the command the hint names exists


def test_sign_then_add_then_a_client_fetches_it(tmp_path: Path, keys: KeySet) -> None:
    """The walk-through for a package built without a key."""
    repo = new_repo(tmp_path, keys)
    pkg = tiny_package(tmp_path / "p", release="6.1.20-tiny")
    signed = cli("sign", pkg, "--key", keys.path(PACKAGE_KEY), "--json")
    assert signed.code == 0, signed.err
    assert signed.json()["key"] == keys.package_fingerprint
    assert cli("verify", pkg, "--key", keys.path(PACKAGE_PUB)).code == 0
    assert cli("repo", "add", repo, pkg).code == 0
    out = tmp_path / "out"
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    with SlowServer(repo, {}) as server:  # nothing slow: a plain server on 127.0.0.1
        args = ("fetch", "tiny", "--from", server.url, "--key", keys.path(PACKAGE_PUB), "--out", out)
        got = cli(*args, "--arch", "x86_64", env=env)
    assert got.code == 0, got.err


def test_sign_writes_what_a_signed_build_writes(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    built_signed = tiny_package(tmp_path / "a", key=keys.path(PACKAGE_KEY)).read_bytes()
    pkg = tiny_package(tmp_path / "b")
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    assert pkg.read_bytes() == built_signed
    # signing again with another key replaces the signature; back again is the same bytes
    assert cli("sign", pkg, "--key", other_keys.path(PACKAGE_KEY)).code == 0
    assert cli("verify", pkg, "--key", other_keys.path(PACKAGE_PUB)).code == 0
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    assert pkg.read_bytes() == built_signed


def test_sign_refuses_a_corrupt_package_and_leaves_it_alone(tmp_path: Path, keys: KeySet) -> None:
    good = tiny_package(tmp_path / "p")
    broken = tmp_path / "broken.tar.zst"
    data = bytearray(good.read_bytes())
    broken.write_bytes(bytes(data[:-100]))
    run = cli("sign", broken, "--key", keys.path(PACKAGE_KEY))
    assert_user_facing_error(run, 2)
    assert broken.read_bytes() == bytes(data[:-100])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tar.zst", "p"]
    assert_user_facing_error(cli("sign", good, "--key", keys.path(PACKAGE_PUB)), 2, "package.pub")


def hostile(dest: Path, key: Path, **fields: Any) -> Path:
    """A signed package whose metadata holds FIELDS (written under a plain name)."""
    plain = tiny_package(dest / "plain", key=key)
    return with_metadata(plain, dest / "hostile.tar.zst", sign=signer(key)[0], **fields)


@pytest.mark.parametrize(
    "fields",
    [{"kernel_release": "x/../../../escaped"}, {"name": "tiny-x/../.."}, {"variant": "../../v"}],
    ids=["release", "name", "variant"],
)
def test_add_refuses_names_that_would_leave_packages(tmp_path: Path, keys: KeySet, fields: dict[str, Any]) -> None:
    repo = new_repo(tmp_path / "r", keys)
    pkg = hostile(tmp_path, keys.path(PACKAGE_KEY), **fields)
    before_repo, before_tmp = snapshot(repo), sorted(p.name for p in (tmp_path / "r").iterdir())
    run = cli("repo", "add", repo, pkg)
    assert_user_facing_error(run, 2)
    assert snapshot(repo) == before_repo
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == before_tmp
    assert not list(tmp_path.rglob("*escaped*"))


@pytest.mark.parametrize(
    ("name", "variant", "release"),
    [
        ("a/b", "", "1"),
        ("..", "", "1"),
        ("a", "", "1/../.."),
        ("a", "x+y", "1"),
        ("a", "", "1\n2"),
        ("a" * 65, "", "1"),
    ],
)
def test_names_that_are_not_plain_are_refused_by_repo_itself(name: str, variant: str, release: str) -> None:
    """The repo's own rule, whatever the package reader lets through."""
    assert name_problem(name, variant, "x86_64", release, "1") is not None


def test_plain_names_are_accepted() -> None:
    assert name_problem("qemu-minimal", "dracut", "x86_64", "6.1.192-distkernel+", "6.1.192") is None
