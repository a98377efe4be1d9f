"""`distkernel matrix` over the suite's two cached x86_64 kernels (the default recipe and
rich.toml: both answered from the package cache, no new kernel build), published to a
signed binhost, pruned, reported (the page read from headless Chromium's DOM); other
arches only planned (--dry-run)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, KeySet
from distkernel.workflows.matrix.publish import prune_plan
from distkernel.workflows.repo.index import Entry, add_packages, init_repo, read_own_index
from tests.build.trust.helpers import tiny_package
from tests.conftest import DEFAULT_RECIPE, RICH_RECIPE, Built, assert_user_facing_error, cli, env_with
from tests.feedmirror import Mirror, make_key, serving, url_recipe


def matrix_file(folder: Path, key: Path, arches: tuple[str, ...] = ("x86_64",), keep: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "matrix.toml"
    listed = ", ".join(f'"{a}"' for a in arches)
    path.write_text(
        "[matrix]\n"
        f'recipes = ["{DEFAULT_RECIPE}", "{RICH_RECIPE}"]\n'
        f"arches = [{listed}]\n"
        f'binhost = "binhost"\nkey = "{key}"\nkeep = {keep}\nretries = 1\n'
    )
    return path


def test_dry_run_plans_every_cell_of_every_arch(tmp_path: Path, keys: KeySet) -> None:
    m = matrix_file(tmp_path / "m", keys.path(PACKAGE_KEY), arches=("x86_64", "arm64"))
    run = cli("matrix", m, "--dry-run", "--json")
    assert run.code == 0, run.err
    plan = {c["cell"]: c["reason"] for c in run.json()["cells"]}
    assert plan == {
        "qemu-minimal-x86_64": "new",
        "qemu-minimal-arm64": "new",
        "qemu-rich-x86_64": "new",
        "qemu-rich-arm64": "new",
    }
    assert not (tmp_path / "m" / "binhost").exists()
    only = cli("matrix", m, "--dry-run", "--json", "--only", "qemu-rich-arm64")
    assert [c["cell"] for c in only.json()["cells"]] == ["qemu-rich-arm64"]


def test_unknown_cell_is_refused(tmp_path: Path, keys: KeySet) -> None:
    m = matrix_file(tmp_path / "m", keys.path(PACKAGE_KEY))
    assert_user_facing_error(cli("matrix", m, "--dry-run", "--only", "nope-x86_64"), 2, "--only nope-x86_64")


def test_unknown_matrix_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[matrix]\nrecipes = ["a.toml"]\nretry = 2\n')
    assert_user_facing_error(cli("matrix", tmp_path / "m.toml", "--dry-run"), 2, "matrix.retry: unknown key")


def _entry(name: str, release: str) -> Entry:
    return Entry(name, "", "x86_64", release, release, f"packages/{name}-{release}.tar.zst", 1, "0" * 64)


def test_prune_keeps_n_per_line_and_never_the_newest_passing() -> None:
    entries = (_entry("k", "6.1.7"), _entry("k", "6.1.10"), _entry("k", "6.1.9"), _entry("j", "6.1.7"))
    assert prune_plan(entries, 1, set()) == ["packages/k-6.1.7.tar.zst", "packages/k-6.1.9.tar.zst"]
    # the newest passing package is 6.1.9 (6.1.10 failed its boot test in a later run)
    assert prune_plan(entries, 1, {"packages/k-6.1.9.tar.zst"}) == ["packages/k-6.1.7.tar.zst"]


@pytest.mark.kernel
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (./bootstrap installs it)")
def test_matrix_builds_boots_publishes_prunes_and_reports(
    tmp_path: Path, keys: KeySet, default_package: Built, rich_package: Built
) -> None:
    key = keys.path(PACKAGE_KEY)
    m = matrix_file(tmp_path / "m", key)
    binhost = tmp_path / "m" / "binhost"
    init_repo(binhost, key)  # an older release of the default kernel is already published
    add_packages(binhost, [tiny_package(tmp_path / "old", key=key, name="qemu-minimal", release="6.1.1-old")])
    run = cli("matrix", m, "--json", "--report", tmp_path / "report")
    assert run.code == 0, run.err
    doc = run.json()
    cells = {c["name"]: c for c in doc["cells"]}
    assert set(cells) == {"qemu-minimal-x86_64", "qemu-rich-x86_64"}
    assert all(c["status"] == "passed" and c["cached"] for c in cells.values()), cells
    assert cells["qemu-minimal-x86_64"]["version"] == default_package.metadata["version"]
    entries = read_own_index(binhost, key).entries
    assert sorted(e.name for e in entries) == ["qemu-minimal", "qemu-rich"]  # the old one pruned
    assert doc["pruned"] == ["packages/" + Path(doc["pruned"][0]).name] and "6.1.1-old" in doc["pruned"][0]
    # the page, as a real browser sees it
    page = Path(doc["html"])
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "2 of 2 cells passed" in dom
    assert 'data-cell="qemu-rich-x86_64"' in dom and 'class="cell passed"' in dom
    assert 'class="console-log"' in dom and 'class="build-log"' in dom
    report = tmp_path / "report" / "latest"
    assert json.loads((report / "report.json").read_text())["passed"] is True
    assert '<testsuite name="matrix matrix.toml" tests="2" failures="0"' in (report / "junit.xml").read_text()
    # a rerun redoes nothing: both cells' inputs are unchanged and they passed
    plan = cli("matrix", m, "--dry-run", "--json", "--report", tmp_path / "report").json()["cells"]
    assert [c["runs"] for c in plan] == [False, False]
    again = cli("matrix", m, "--json", "--report", tmp_path / "report")
    assert again.code == 0, again.err
    assert [c["ran"] for c in again.json()["cells"]] == [False, False]


def test_a_failing_cell_is_reported_with_its_class_and_redone_next_time(tmp_path: Path) -> None:
    """A cell whose source is refused (its mirror's sha256sums.asc signed by a key outside
    the recipe's keyring) fails as `input` without building anything; the run exits 1,
    JUnit counts the failure, and the next plan redoes that cell."""
    keyring = make_key(tmp_path / "keys" / "home", "signer")
    mirror = Mirror(tmp_path / "mirror", tmp_path / "keys" / "home")
    with serving(mirror):
        sha = mirror.add("6.1.7", tmp_path / "work")
        make_key(tmp_path / "other" / "home", "intruder")
        mirror.resign(tmp_path / "other" / "home")
        recipe = url_recipe(tmp_path / "lts.toml", mirror, "6.1.7", sha, keyring)
        (tmp_path / "m.toml").write_text(f'[matrix]\nrecipes = ["{recipe}"]\narches = ["x86_64"]\n')
        env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
        run = cli("matrix", tmp_path / "m.toml", "--json", "--report", tmp_path / "report", env=env)
    assert run.code == 1, run.err
    assert "1 cell(s) failed" in run.err
    (cell,) = run.json()["cells"]
    assert (cell["name"], cell["status"], cell["failure"]) == ("lts-x86_64", "build failed", "input")
    assert "bad signature" in cell["detail"]
    assert 'failures="1"' in (tmp_path / "report" / "latest" / "junit.xml").read_text()
    plan = cli("matrix", tmp_path / "m.toml", "--dry-run", "--json", "--report", tmp_path / "report").json()
    assert plan["cells"][0]["reason"] == "failed last time (build failed)"
