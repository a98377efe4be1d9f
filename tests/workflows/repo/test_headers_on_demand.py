"""A binary-only client downloads the kernel part alone; the headers part only when the
root has external modules to build (registered before the install, `--with-headers`,
or a later `modules add`, which fetches it from the binhost the root recorded). What a
hostile binhost serves for either part is refused, leaving the root byte for byte as
it was. (The real kernel and a real dkms build: test_split_kernel.py.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.build.trust.keys import PACKAGE_PUB, KeySet
from distkernel.workflows.repo.parts import split_package
from tests.conftest import DATA, Run, assert_user_facing_error, cli, env_with
from tests.hostile import snapshot
from tests.workflows.repo.parts_helpers import (
    HEADERS_PART,
    KERNEL_PART,
    RELEASE,
    Recording,
    fake_repo,
    point_entry,
    rewrite_index,
    signed_fake,
    without_member,
)

HEADERS_DIR = f"usr/src/linux-headers-{RELEASE}"
MODULES_DIR = f"lib/modules/{RELEASE}"


@pytest.fixture
def repo(tmp_path: Path, keys: KeySet) -> Path:
    return fake_repo(tmp_path / "bh", keys)


@pytest.fixture
def served(repo: Path) -> Iterator[Recording]:
    with Recording(repo) as server:
        yield server


def new_root(tmp_path: Path, keys: KeySet, name: str = "root") -> Path:
    root = tmp_path / name
    (root / TRUSTED_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(PACKAGE_PUB), root / TRUSTED_DIR / "package.pub")
    return root


def install(url: str, root: Path, *extra: str) -> Run:
    env = env_with(DISTKERNEL_CACHE=str(root.parent / "cache"))
    args = ("install", "fake", "--from", url, "--root", root, "--layout", "plain", "--initramfs", "none")
    return cli(*args, "--json", *extra, env=env)


def add_module(root: Path) -> Run:
    env = env_with(DISTKERNEL_CACHE=str(root.parent / "cache"))
    return cli("modules", "add", DATA / "extmod" / "plain", "--name", "dk_plain", "--root", root, env=env)


def kernel_record(root: Path) -> dict[str, Any]:
    listed = cli("list", "--root", root, "--json")
    assert listed.code == 0, listed.err
    (k,) = listed.json()["kernels"]
    return k  # type: ignore[no-any-return]


def test_binary_only_install_asks_for_the_kernel_part_alone(served: Recording, tmp_path: Path, keys: KeySet) -> None:
    root = new_root(tmp_path, keys)
    run = install(served.url, root)
    assert run.code == 0, run.err
    assert served.asked == ["index.json", KERNEL_PART]
    assert run.json()["headers"] is False
    assert sorted(p.name for p in (root / HEADERS_DIR).iterdir()) == [".config"]  # what initramfs and test read
    assert not (root / MODULES_DIR / "build").is_symlink()
    k = kernel_record(root)
    assert k["headers"] is False and k["origin"]["urls"] == [served.url]
    assert k["origin"]["headers_path"] == HEADERS_PART


def test_modules_add_fetches_the_headers_part_from_the_same_binhost(
    served: Recording, tmp_path: Path, keys: KeySet
) -> None:
    root = new_root(tmp_path, keys)
    assert install(served.url, root).code == 0
    run = add_module(root)  # the fake headers build nothing: the module fails, the headers are placed
    assert f"fetched the headers of {RELEASE} from its binhost" in run.err, run.err
    assert served.asked == ["index.json", KERNEL_PART, HEADERS_PART]
    assert (root / HEADERS_DIR / "include/linux/fake.h").is_file() and (root / HEADERS_DIR / "include/asm").is_symlink()
    assert (root / MODULES_DIR / "build").resolve() == (root / HEADERS_DIR).resolve()
    assert kernel_record(root)["headers"] is True
    assert add_module(root).code == run.code and served.asked[-1] == HEADERS_PART  # not fetched again


@pytest.mark.parametrize("how", ["registered", "flag"])
def test_a_root_that_builds_external_modules_gets_both_parts(
    served: Recording, tmp_path: Path, keys: KeySet, how: str
) -> None:
    root = new_root(tmp_path, keys)
    if how == "registered":
        assert add_module(root).code == 0  # registered; no kernel to build it for yet
    run = install(served.url, root, *(["--with-headers"] if how == "flag" else []))
    assert run.code == 0, run.err
    assert served.asked == ["index.json", KERNEL_PART, HEADERS_PART]
    assert (root / HEADERS_DIR / "include/linux/fake.h").is_file()
    assert kernel_record(root)["headers"] is True


def _one_part(entry: dict[str, Any]) -> None:
    del entry["headers"]


def _headers_elsewhere(entry: dict[str, Any]) -> None:
    entry["headers"]["path"] = "packages/other.headers.tar.zst"


def _attack(name: str, repo: Path, tmp_path: Path, keys: KeySet) -> str:
    """Break the binhost as NAME says; the text the refusal must hold."""
    if name == "headers-tampered":
        data = bytearray((repo / HEADERS_PART).read_bytes())
        data[len(data) // 2] ^= 1
        (repo / HEADERS_PART).write_bytes(bytes(data))
        return "sha256 differs"
    if name == "one-part":
        rewrite_index(repo, keys, _one_part)
        return "only one part"
    if name == "headers-elsewhere":
        rewrite_index(repo, keys, _headers_elsewhere)
        return "its headers part is not"
    if name == "kernel-part-missing-a-file":
        damaged = without_member(repo / KERNEL_PART, tmp_path / "damaged.tar.zst", "modules/modules.order")
        point_entry(repo, keys, "kernel", damaged)
        return "in the manifest but not in the package"
    # headers-of-another: a valid headers part, signed, of another package of the same names
    other = signed_fake(tmp_path / "other", keys, tag=b"another build")
    split_package(other, tmp_path / "ok.tar.zst", tmp_path / "oh.tar.zst")
    point_entry(repo, keys, "headers", tmp_path / "oh.tar.zst")
    return "is not the one of"


ATTACKS = ["headers-tampered", "one-part", "headers-elsewhere", "kernel-part-missing-a-file", "headers-of-another"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_hostile_binhost_is_refused_with_the_root_unchanged(
    served: Recording, repo: Path, tmp_path: Path, keys: KeySet, attack: str
) -> None:
    root = new_root(tmp_path, keys)
    needle = _attack(attack, repo, tmp_path, keys)
    before = snapshot(root)
    run = install(served.url, root, "--with-headers")
    assert_user_facing_error(run, 2, needle)
    assert snapshot(root) == before


@pytest.mark.parametrize("attack", ["headers-tampered", "headers-of-another"])
def test_modules_add_refuses_a_hostile_headers_part_with_the_root_unchanged(
    served: Recording, repo: Path, tmp_path: Path, keys: KeySet, attack: str
) -> None:
    root = new_root(tmp_path, keys)
    assert install(served.url, root).code == 0
    _attack(attack, repo, tmp_path, keys)
    before = snapshot(root)
    run = add_module(root)
    assert_user_facing_error(run, 2)
    assert snapshot(root) == before
    assert kernel_record(root)["headers"] is False


def test_the_recorded_origin_survives_a_reread_of_the_state(served: Recording, tmp_path: Path, keys: KeySet) -> None:
    root = new_root(tmp_path, keys)
    assert install(served.url, root).code == 0
    state = json.loads((root / "var/lib/distkernel/state.json").read_text())
    origin = state["kernels"][RELEASE]["origin"]
    assert set(origin) == {"urls", "manifest_sha256", "headers_path", "headers_size", "headers_sha256", "package"}
    assert origin["package"] == ""  # (a package file installed without its headers names itself there)
