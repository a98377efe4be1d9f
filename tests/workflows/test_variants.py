"""Two variants of one kernel (the default recipe, and the same kernel as variant `alt`):
their releases differ by the variant, both are published side by side in one binhost,
`install NAME+VARIANT --from URL` picks one, both install in one root at once with
boot entries told apart, and removing one leaves the other whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from tests.conftest import DATA, Built, cli, env_with
from tests.hostile import snapshot
from tests.workflows.repo.conftest import served

pytestmark = pytest.mark.kernel

ALT = DATA / "recipes" / "minimal-alt.toml"


def _menu_line(entry: str) -> tuple[str, ...]:
    return tuple(line.split(None, 1)[1] for line in entry.splitlines() if line.startswith(("title", "version")))


def test_two_variants_side_by_side(default_package: Built, tmp_path: Path, keys: KeySet) -> None:
    run = cli("build", ALT, "--out", tmp_path / "alt", "--json")
    assert run.code == 0, run.err
    alt = run.json()
    release = default_package.metadata["kernel_release"]
    assert alt["metadata"]["kernel_release"] == release + "-alt"
    assert alt["metadata"]["variant"] == "alt"
    repo, root = tmp_path / "bh", tmp_path / "root"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    for pkg in (default_package.package, Path(alt["package"])):
        copy = tmp_path / pkg.name
        shutil.copyfile(pkg, copy)
        assert cli("sign", copy, "--key", keys.path(PACKAGE_KEY)).code == 0
        assert cli("repo", "add", repo, copy).code == 0
    (root / "efi" / "EFI").mkdir(parents=True)  # an ESP: the bls layout writes entries there
    (root / TRUSTED_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(PACKAGE_PUB), root / TRUSTED_DIR / "package.pub")
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    installed = {}
    with served(repo) as url:
        for spec in ("qemu-minimal+alt", "qemu-minimal"):
            args = ("install", spec, "--from", url, "--root", root, "--layout", "bls", "--initramfs", "builtin")
            run = cli(*args, "--json", env=env)
            assert run.code == 0, run.err
            installed[spec] = run.json()["release"]
    assert installed == {"qemu-minimal+alt": release + "-alt", "qemu-minimal": release}
    listed = cli("list", "--root", root, "--json").json()
    assert {k["release"] for k in listed["kernels"]} == {release, release + "-alt"}
    entries = sorted((root / "efi" / "loader" / "entries").iterdir())
    shown = {_menu_line(e.read_text()) for e in entries}  # the menu shows title and version
    assert len(entries) == 2 and len(shown) == 2, shown
    before = snapshot(root / "lib" / "modules" / release)
    run = cli("remove", release + "-alt", "--root", root, "--json")
    assert run.code == 0, run.err
    assert not (root / "lib" / "modules" / (release + "-alt")).exists()
    assert snapshot(root / "lib" / "modules" / release) == before  # the other variant is whole
    listed = cli("list", "--root", root, "--json").json()
    assert [k["release"] for k in listed["kernels"]] == [release]
