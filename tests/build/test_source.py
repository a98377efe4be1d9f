from __future__ import annotations

import os
from pathlib import Path

import pytest

from distkernel.build.recipe import load_recipe
from distkernel.build.source import STAMP, prepare_source, read_version, source_key
from distkernel.core.cache import sha256_file
from distkernel.core.errors import UserError

PATCH_OK = """\
--- a/init/main.c
+++ b/init/main.c
@@ -1,4 +1,4 @@
 int main(void)
 {
-\treturn 0;
+\treturn 1;
 }
"""
PATCH_BAD = PATCH_OK.replace("-\treturn 0;", "-\treturn 42;")


def recipe_for(tmp_path: Path, source: str, sha: str = "", patches: tuple[str, ...] = ()) -> Path:
    listed = ", ".join(f'"{p}"' for p in patches)
    path = tmp_path / "r.toml"
    path.write_text(
        f'[kernel]\nname = "t"\nsource = "{source}"\nsha256 = "{sha}"\npatches = [{listed}]\n'
        '[config]\nbase = "tinyconfig"\n'
    )
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTKERNEL_CACHE", str(tmp_path / "cache"))


def test_tarball_is_extracted_once_and_keyed_by_content(tmp_path: Path, fake_tarball: Path) -> None:
    r = load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", sha256_file(fake_tarball)))
    tree = prepare_source(r)
    assert tree.version == "6.1.7"
    assert tree.key == sha256_file(fake_tarball)
    assert (tree.path / "init" / "main.c").is_file()
    assert tree.date == int((tree.path / "Makefile").stat().st_mtime)
    again = prepare_source(r)
    assert again == tree


def test_wrong_sha256_fails_before_extraction(tmp_path: Path, fake_tarball: Path) -> None:
    r = load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", "0" * 64))
    with pytest.raises(UserError, match=r"r.toml:4: kernel.sha256: .* has sha256 [0-9a-f]{64}, the recipe expects 0+"):
        prepare_source(r)
    assert not (tmp_path / "cache" / "src").exists() or not any((tmp_path / "cache" / "src").iterdir())


def test_patches_apply_to_a_linked_copy_leaving_the_pristine_tree_alone(tmp_path: Path, fake_tarball: Path) -> None:
    (tmp_path / "fix.patch").write_text(PATCH_OK)
    sha = sha256_file(fake_tarball)
    plain = prepare_source(load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", sha)))
    r = load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", sha, ("fix.patch",)))
    patched = prepare_source(r)
    assert patched.key == source_key(r) != plain.key
    assert "return 1;" in (patched.path / "init/main.c").read_text()
    assert "return 0;" in (plain.path / "init/main.c").read_text()
    assert os.stat(patched.path / "Makefile").st_ino == os.stat(plain.path / "Makefile").st_ino


def test_a_failing_patch_names_the_patch_and_the_rejected_hunk(tmp_path: Path, fake_tarball: Path) -> None:
    (tmp_path / "0001-broken.patch").write_text(PATCH_BAD)
    r = load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", sha256_file(fake_tarball), ("0001-broken.patch",)))
    with pytest.raises(UserError) as e:
        prepare_source(r)
    assert (
        "kernel.patches: 0001-broken.patch does not apply: hunk #1 of init/main.c FAILED at line 1" in e.value.message
    )
    assert any("return 42" in line for line in e.value.details)
    assert not list((tmp_path / "cache" / "src").glob(f"{source_key(r)}*"))


def test_dir_source_must_be_clean(tmp_path: Path) -> None:
    from tests.conftest import make_fake_tree

    tree = make_fake_tree(tmp_path / "linux")
    r = load_recipe(recipe_for(tmp_path, f"dir:{tree}"))
    assert prepare_source(r).path == tree
    (tree / ".config").write_text("")
    with pytest.raises(UserError, match=r"is not clean \(.config exists\); run `make mrproper`"):
        prepare_source(load_recipe(recipe_for(tmp_path, f"dir:{tree}")))


def test_missing_debian_source_says_how_to_install(tmp_path: Path) -> None:
    r = load_recipe(recipe_for(tmp_path, "debian:linux-source-9.9"))
    with pytest.raises(
        UserError, match=r"kernel.source: Debian source `linux-source-9.9` not found .* apt-get install"
    ):
        prepare_source(r)


def test_read_version_with_extraversion(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\nNAME = x\n")
    assert read_version(tmp_path) == "6.12.0-rc3"
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\nNAME = x\n")
    assert read_version(tmp_path) == "6.1.192"


def test_a_url_that_is_no_url_is_one_user_error(tmp_path: Path) -> None:
    r = load_recipe(recipe_for(tmp_path, "url:kernel.tar.xz", "0" * 64))
    with pytest.raises(UserError, match=r"r.toml:3: kernel.source: cannot download kernel.tar.xz: unknown url type"):
        prepare_source(r)
    assert not any((tmp_path / "cache" / "downloads").iterdir())


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        "[]",
        '{"tree": "../../..", "key": "K", "date": 1, "origin": "x"}',
        '{"tree": "linux", "key": "another", "date": 1, "origin": "x"}',
        '{"tree": "gone", "key": "K", "date": 1, "origin": "x"}',
        "",
    ],
    ids=["not-json", "list", "tree-escapes", "other-key", "no-tree", "empty"],
)
def test_a_damaged_source_stamp_is_rebuilt_under_the_lock(tmp_path: Path, fake_tarball: Path, damage: str) -> None:
    (tmp_path / "fix.patch").write_text(PATCH_OK)
    sha = sha256_file(fake_tarball)
    r = load_recipe(recipe_for(tmp_path, f"tarball:{fake_tarball}", sha, ("fix.patch",)))
    patched = prepare_source(r)
    pristine_entry = tmp_path / "cache" / "src" / sha
    for entry in (pristine_entry, patched.path.parent):  # the extracted and the patched tree
        (entry / STAMP).write_text(damage.replace('"K"', f'"{entry.name}"'))
        again = prepare_source(r)
        assert again == patched
        assert "return 1;" in (again.path / "init/main.c").read_text()
    assert sorted(p.name for p in (tmp_path / "cache" / "src").iterdir()) == sorted([sha, source_key(r)])


def test_a_stalled_source_url_is_refused_at_the_deadline(
    tmp_path: Path, fake_tarball: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.workflows.repo.slow import SlowServer

    monkeypatch.setenv("DISTKERNEL_DOWNLOAD_DEADLINE", "8")
    with SlowServer(fake_tarball.parent, {fake_tarball.name: "body"}) as server:
        r = load_recipe(recipe_for(tmp_path, f"url:{server.url}{fake_tarball.name}", sha256_file(fake_tarball)))
        with pytest.raises(
            UserError, match=r"r.toml:3: kernel.source: http://127.0.0.1:\d+/.*: not downloaded within 8 s"
        ):
            prepare_source(r)
    assert not any((tmp_path / "cache" / "downloads").iterdir())


def test_a_source_url_is_downloaded_checked_and_kept(tmp_path: Path, fake_tarball: Path) -> None:
    from tests.workflows.repo.slow import SlowServer

    with SlowServer(fake_tarball.parent, {}) as server:
        r = load_recipe(recipe_for(tmp_path, f"url:{server.url}{fake_tarball.name}", sha256_file(fake_tarball)))
        assert prepare_source(r).version == "6.1.7"
    assert [p.name for p in (tmp_path / "cache" / "downloads").iterdir()] == [sha256_file(fake_tarball)]
