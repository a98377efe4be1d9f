"""Pinned sources fetched exactly: a kernel.org-style mirror made here (signed with a key
made here, served on 127.0.0.1) and Debian's archive through apt."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source
from distkernel.core.errors import UserError
from tests.conftest import assert_user_facing_error, cli, env_with
from tests.feedmirror import Mirror, make_key, serving, url_recipe


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTKERNEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[Mirror, Path, str]]:
    keyring = make_key(tmp_path / "keys" / "home", "signer")
    m = Mirror(tmp_path / "mirror", tmp_path / "keys" / "home")
    with serving(m):
        sha = m.add("6.1.7", tmp_path / "work")
        yield m, keyring, sha


def test_signed_url_source_is_fetched_and_verified(mirror: tuple[Mirror, Path, str], tmp_path: Path) -> None:
    m, keyring, sha = mirror
    tree = prepare_source(load_recipe(url_recipe(tmp_path / "r.toml", m, "6.1.7", sha, keyring)))
    assert tree.version == "6.1.7"


def test_tampered_tarball_is_refused(mirror: tuple[Mirror, Path, str], tmp_path: Path) -> None:
    m, keyring, _ = mirror
    m.tarball("6.1.7").write_bytes(m.tarball("6.1.7").read_bytes() + b"\0")
    forged = hashlib.sha256(m.tarball("6.1.7").read_bytes()).hexdigest()  # a recipe edited to match
    recipe = url_recipe(tmp_path / "r.toml", m, "6.1.7", forged, keyring)
    run = cli("build", recipe, "--out", tmp_path / "out", env=env_with(DISTKERNEL_CACHE=str(tmp_path / "c")))
    assert_user_facing_error(run, 2, "is not the signed sha256sums.asc's", "tampered")


def test_bad_signature_is_refused(mirror: tuple[Mirror, Path, str], tmp_path: Path) -> None:
    m, keyring, sha = mirror
    make_key(tmp_path / "other" / "home", "intruder")
    m.resign(tmp_path / "other" / "home")  # sha256sums.asc signed by a key not in the keyring
    with pytest.raises(UserError, match="bad signature"):
        prepare_source(load_recipe(url_recipe(tmp_path / "r.toml", m, "6.1.7", sha, keyring)))


def test_missing_tarball_signature_is_refused(mirror: tuple[Mirror, Path, str], tmp_path: Path) -> None:
    m, keyring, sha = mirror
    (m.folder / "linux-6.1.7.tar.sign").unlink()
    recipe = url_recipe(tmp_path / "r.toml", m, "6.1.7", sha, keyring)
    run = cli("build", recipe, "--out", tmp_path / "out", env=env_with(DISTKERNEL_CACHE=str(tmp_path / "c")))
    assert_user_facing_error(run, 2, "linux-6.1.7.tar.sign", "HTTP 404")


def test_tarball_signature_over_other_content_is_refused(mirror: tuple[Mirror, Path, str], tmp_path: Path) -> None:
    m, keyring, _ = mirror
    m.add("6.1.8", tmp_path / "work")
    shutil.copyfile(m.folder / "linux-6.1.8.tar.sign", m.folder / "linux-6.1.7.tar.sign")
    m.resign()
    sha = hashlib.sha256(m.tarball("6.1.7").read_bytes()).hexdigest()
    with pytest.raises(UserError, match="bad signature"):
        prepare_source(load_recipe(url_recipe(tmp_path / "r.toml", m, "6.1.7", sha, keyring)))


def test_pin_on_a_dir_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "linux").mkdir()
    (tmp_path / "linux" / "Makefile").write_text("VERSION = 6\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text('[kernel]\nname = "t"\nsource = "dir:linux"\nversion = "6.1.7"\n[config]\nbase = "tinyconfig"\n')
    with pytest.raises(UserError, match="only debian: and url: sources are pinned"):
        load_recipe(recipe)


def test_keyring_on_a_debian_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "k.gpg").write_bytes(b"")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[kernel]\nname = "t"\nsource = "debian:linux-source-6.1"\nkeyring = "k.gpg"\n[config]\nbase = "tinyconfig"\n'
    )
    with pytest.raises(UserError, match="only a url: source has a keyring"):
        load_recipe(recipe)


def test_unknown_debian_version_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[kernel]\nname = "t"\nsource = "debian:linux-source-6.1"\nversion = "6.1.0-0"\n[config]\nbase = "tinyconfig"\n'
    )
    with pytest.raises(UserError, match="not in the archive"):
        prepare_source(load_recipe(recipe))
