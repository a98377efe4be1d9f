"""A package published as two parts: each part is read alone by the one strict reader
(and refused as a whole package, and refused when it lacks a file of its own or holds
one of the other part), joining them gives the package back byte for byte, `repo add`
lists both under one signed entry, and a client reads an old-style (format 1) index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distkernel.build.package.format import HEADERS_PART, KERNEL_PART, WHOLE, canonical_json
from distkernel.build.package.reader import PackageError, check_package
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.build.trust.signing import load_trusted, signer
from distkernel.core.cache import sha256_file
from distkernel.workflows.repo.index import INDEX, add_packages, init_repo, parse_index
from distkernel.workflows.repo.parts import headers_name, join_parts, split_package
from tests.conftest import cli, env_with
from tests.workflows.repo.parts_helpers import signed_fake, without_member


@pytest.fixture
def split(tmp_path: Path, keys: KeySet) -> tuple[Path, Path, Path]:
    pkg = signed_fake(tmp_path / "pkg", keys)
    kernel, headers = tmp_path / "k.tar.zst", tmp_path / "h.tar.zst"
    split_package(pkg, kernel, headers)
    return pkg, kernel, headers


def test_each_part_is_read_alone_and_the_two_join_into_the_package_byte_for_byte(
    split: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    pkg, kernel, headers = split
    whole = check_package(pkg)
    k = check_package(kernel, part=KERNEL_PART)
    h = check_package(headers, part=HEADERS_PART)
    assert (
        (k.manifest_sha256, k.signature) == (h.manifest_sha256, h.signature) == (whole.manifest_sha256, whole.signature)
    )
    assert {n.split("/")[0] for n in whole.manifest.files} == {"kernel", "modules", "headers"}
    assert k.files + h.files == whole.files and k.image is not None and h.image is None
    joined = join_parts(kernel, headers, tmp_path / "joined.tar.zst")
    assert joined.part == WHOLE
    assert (tmp_path / "joined.tar.zst").read_bytes() == pkg.read_bytes()


def test_a_part_is_refused_as_a_whole_package_with_a_hint(split: tuple[Path, Path, Path]) -> None:
    _, kernel, headers = split
    with pytest.raises(PackageError, match=r"headers/\S+: in the manifest but not in the package .*nothing of headers"):
        check_package(kernel)
    with pytest.raises(PackageError, match=r"nothing of kernel, modules/"):
        check_package(headers)
    assert cli("verify", kernel).code == 2  # the CLI's one reader says the same


def test_a_kernel_part_missing_a_file_its_manifest_lists_is_refused(
    split: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, kernel, _ = split
    damaged = without_member(kernel, tmp_path / "damaged.tar.zst", "kernel/System.map")
    with pytest.raises(PackageError, match=r"kernel/System.map: in the manifest but not in the package"):
        check_package(damaged, part=KERNEL_PART)


def test_a_part_holding_a_member_of_the_other_part_is_refused(split: tuple[Path, Path, Path]) -> None:
    pkg, kernel, headers = split
    with pytest.raises(PackageError, match=r"headers/\S+: does not belong in the kernel part"):
        check_package(pkg, part=KERNEL_PART)
    with pytest.raises(PackageError, match=r"does not belong in the headers part"):
        check_package(kernel, part=HEADERS_PART)
    with pytest.raises(PackageError, match=r"does not belong in the kernel part"):
        check_package(headers, part=KERNEL_PART)


def test_repo_add_lists_both_parts_under_one_signed_entry(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    pkg = signed_fake(tmp_path / "pkg", keys)
    added = cli("repo", "add", repo, pkg, "--json")
    assert added.code == 0, added.err
    index, _ = parse_index((repo / INDEX).read_bytes(), "test", load_trusted([keys.path(PACKAGE_PUB)]))
    (entry,) = index.entries
    assert entry.headers is not None and entry.headers.path == f"packages/{headers_name(pkg.name)}"
    for part, kind in ((entry.kernel, KERNEL_PART), (entry.headers, HEADERS_PART)):
        file = repo / part.path
        assert (file.stat().st_size, sha256_file(file)) == (part.size, part.sha256)
        check_package(file, part=kind)
    assert sorted(p.name for p in (repo / "packages").iterdir()) == sorted([pkg.name, headers_name(pkg.name)])
    assert added.json()["packages"][0]["headers"]["sha256"] == entry.headers.sha256
    before = {p.name: p.stat().st_mtime_ns for p in (repo / "packages").iterdir()}
    again = cli("repo", "add", repo, pkg, "--json").json()  # the same package: new serial, the same files
    assert again["serial"] == index.serial + 1
    assert {p.name: p.stat().st_mtime_ns for p in (repo / "packages").iterdir()} == before


def test_an_old_style_index_is_read_and_repo_add_splits_its_packages(tmp_path: Path, keys: KeySet) -> None:
    """A format-1 index (whole packages, written before the split) still serves clients;
    the next `repo add` publishes its packages as parts."""
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    pkg = signed_fake(tmp_path / "pkg", keys)
    shutil.copyfile(pkg, repo / "packages" / pkg.name)
    signed = {
        "format": 1,
        "serial": 2,
        "packages": [
            {
                "name": "fake", "variant": "", "arch": "x86_64", "kernel_release": "6.1.0-fake", "version": "6.1.0",
                "path": f"packages/{pkg.name}", "size": pkg.stat().st_size, "sha256": sha256_file(pkg),
            }
        ],
    }  # fmt: skip
    sign = signer(keys.path(PACKAGE_KEY))[0]
    (repo / INDEX).write_bytes(
        canonical_json({"signed": signed, "signature": json.loads(sign(canonical_json(signed)))})
    )
    out = tmp_path / "out"
    env = env_with(DISTKERNEL_CACHE=str(tmp_path / "cache"))
    got = cli(
        "fetch", "fake", "--from", repo, "--key", keys.path(PACKAGE_PUB), "--out", out, "--arch", "x86_64", env=env
    )
    assert got.code == 0, got.err
    assert (out / pkg.name).read_bytes() == pkg.read_bytes()
    other = signed_fake(tmp_path / "pkg2", keys, release="6.1.1-fake")
    assert cli("repo", "add", repo, other).code == 0
    doc = json.loads((repo / INDEX).read_text())["signed"]
    assert doc["format"] == 2 and all("headers" in e for e in doc["packages"]) and len(doc["packages"]) == 2
    check_package(repo / "packages" / pkg.name, part=KERNEL_PART)  # the whole file became its kernel part
    shutil.rmtree(out)
    got = cli("fetch", "fake@6.1.0-fake", "--from", repo, "--key", keys.path(PACKAGE_PUB), "--out", out, env=env)
    assert got.code == 0, got.err
    assert (out / pkg.name).read_bytes() == pkg.read_bytes()


def test_add_publishes_nothing_when_a_package_s_name_ends_like_a_headers_part(tmp_path: Path, keys: KeySet) -> None:
    repo = tmp_path / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    from distkernel.workflows.repo.sign import sign_package
    from tests.build.trust.helpers import tiny_package

    pkg = tiny_package(tmp_path / "p", variant="x.headers")
    sign_package(pkg, keys.path(PACKAGE_KEY))
    run = cli("repo", "add", repo, pkg)
    assert run.code == 2 and "ends like a headers part" in run.err, run.err
    assert list((repo / "packages").iterdir()) == []
    with pytest.raises(Exception, match="ends like a headers part"):
        add_packages(repo, [pkg])
