"""A package file places its headers tree only where the root builds external modules
(or with --with-headers), the rule a binhost client fetches by; `modules add` takes the
headers from the same file later."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import zstandard

from distkernel.core.errors import UserError
from distkernel.target.install import install_package, load_state
from distkernel.workflows.repo.headers import fetch_missing_headers
from tests.conftest import cli
from tests.target.install.helpers import fake_package, make_root, with_release

RELEASE = "6.1.0-fake"
HEADERS = f"usr/src/linux-headers-{RELEASE}"
MODDIR = f"usr/lib/modules/{RELEASE}"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"))


def test_no_external_modules_no_headers_tree(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    run = cli("install", pkg, "--root", root, "--initramfs", "none", "--json")
    assert run.code == 0, run.err
    assert run.json()["headers"] is False
    assert sorted(p.name for p in (root / HEADERS).iterdir()) == [".config"]  # what the initramfs reads
    assert not (root / MODDIR / "build").exists()
    k = load_state(root).kernels[RELEASE]
    assert not k.headers and k.origin is not None and k.origin.package == str(pkg.resolve())


def test_dry_run_says_whether_headers_are_placed(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    plain = cli("install", pkg, "--root", root, "--dry-run", "--json")
    wanted = cli("install", pkg, "--root", root, "--dry-run", "--with-headers", "--json")
    assert plain.json()["details"]["headers"].startswith("no ")
    assert wanted.json()["details"]["headers"] == "yes"


def test_with_headers_places_the_tree(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    run = cli("install", pkg, "--root", root, "--initramfs", "none", "--with-headers", "--json")
    assert run.code == 0, run.err
    assert run.json()["headers"] is True
    assert (root / MODDIR / "build/include/linux/fake.h").read_text() == "#define FAKE 1\n"
    assert load_state(root).kernels[RELEASE].origin is None


def test_a_root_with_the_real_dkms_gets_the_tree(pkg: Path, tmp_path: Path) -> None:
    """dkms's own kernel hook builds against /lib/modules/RELEASE/build."""
    root = make_root(tmp_path / "r")
    (root / "var/lib/dkms").mkdir(parents=True)
    inst = install_package(pkg, root, initramfs="none")
    assert inst.headers and (root / MODDIR / "build/Makefile").is_file()


def test_modules_add_takes_the_headers_from_the_same_file(pkg: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    install_package(pkg, root, initramfs="none")
    assert fetch_missing_headers(root) == ((RELEASE, str(pkg.resolve())),)
    assert (root / MODDIR / "build/include/linux/fake.h").read_text() == "#define FAKE 1\n"
    assert load_state(root).kernels[RELEASE].headers
    assert fetch_missing_headers(root) == ()  # nothing left to place


def test_gone_package_file_names_the_fix(tmp_path: Path) -> None:
    pkg = fake_package(tmp_path / "pkg")
    root = make_root(tmp_path / "r")
    install_package(pkg, root, initramfs="none")
    pkg.unlink()
    with pytest.raises(UserError, match="--with-headers"):
        fetch_missing_headers(root)
    assert not load_state(root).kernels[RELEASE].headers


def test_another_package_at_the_same_path_is_refused(tmp_path: Path) -> None:
    pkg = fake_package(tmp_path / "pkg")
    root = make_root(tmp_path / "r")
    install_package(pkg, root, initramfs="none")
    shutil.copyfile(with_release(pkg, tmp_path / "other", "6.1.0-other"), pkg)
    with pytest.raises(UserError, match="not the headers of the installed kernel"):
        fetch_missing_headers(root)


def _replace_payload(pkg: Path, old: bytes, new: bytes) -> None:
    """Rewrite PKG with OLD's bytes changed to NEW (same length) and nothing else."""
    tar = zstandard.ZstdDecompressor().stream_reader(pkg.open("rb"), read_across_frames=True).read()
    assert tar.count(old) == 1 and len(old) == len(new)
    pkg.write_bytes(zstandard.ZstdCompressor().compress(tar.replace(old, new)))


def test_unplaced_headers_are_not_read_but_placed_ones_are_checked(tmp_path: Path) -> None:
    """A headers file that differs from the manifest is not written, so not judged, by an
    install without the headers tree; placing the tree refuses it."""
    pkg = fake_package(tmp_path / "pkg")
    _replace_payload(pkg, b"#define FAKE 1\n", b"#define FAKE 2\n")
    root = make_root(tmp_path / "r")
    assert install_package(pkg, root, initramfs="none").headers is False
    with pytest.raises(UserError, match=r"fake\.h: sha256 differs from the manifest"):
        fetch_missing_headers(root)
    other = make_root(tmp_path / "o")
    run = cli("install", pkg, "--root", other, "--initramfs", "none", "--with-headers")
    assert run.code == 2 and "fake.h: sha256 differs from the manifest" in run.err
