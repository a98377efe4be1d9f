"""Secure boot at install time: a UKI is signed with the root's db key (made by `distkernel
key generate`) before it is renamed into place, recorded in the state, shown by `list`,
and signed again when refresh_initramfs rebuilds it; without a key it is unsigned and
says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.build.trust.secureboot import ROOT_DB_CRT, ROOT_DB_DIR, ROOT_DB_KEY, verify_efi
from distkernel.target.install import install_package, refresh_initramfs
from tests.conftest import Built, cli
from tests.target.install.helpers import consistent, fake_package, make_root

RELEASE = "6.1.0-fake"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_package(tmp_path_factory.mktemp("pkg"))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `distkernel key generate` wrote (db.key, db.crt among them)."""
    out = tmp_path_factory.mktemp("keys") / "k"
    run = cli("key", "generate", "--out", out, "--name", "Test Owner")
    assert run.code == 0, run.err
    return out


def root_with_db(path: Path, db: Path) -> Path:
    root = make_root(path)
    folder = root / ROOT_DB_DIR
    folder.mkdir(parents=True)
    for name in (ROOT_DB_KEY, ROOT_DB_CRT):
        shutil.copyfile(db / name, folder / name)
    return root


def listed(root: Path) -> dict[str, object]:
    run = cli("list", "--root", root, "--json")
    assert run.code == 0, run.err
    (kernel,) = run.json()["kernels"]
    assert isinstance(kernel, dict)
    return kernel


def test_uki_signed_with_the_roots_db_key_and_again_on_refresh(pkg: Path, db: Path, tmp_path: Path) -> None:
    root = root_with_db(tmp_path / "r", db)
    inst = install_package(pkg, root, layout="uki", initramfs="builtin")
    assert inst.uki is not None
    ok, line = verify_efi(inst.uki, db / "db.crt")
    assert ok, line
    assert "Test Owner" in inst.uki_signer
    kernel = listed(root)
    assert kernel["uki_signed"] is True and kernel["uki_signer"] == inst.uki_signer
    assert "signed by" in cli("list", "--root", root).out
    consistent(root)  # the recorded hash is the signed file's

    before = inst.uki.stat().st_ino
    after = refresh_initramfs(root, RELEASE, extra_modules=())
    assert after.uki == inst.uki and after.uki_signer == inst.uki_signer
    assert inst.uki.stat().st_ino != before  # a new UKI was renamed into place ...
    assert verify_efi(inst.uki, db / "db.crt")[0]  # ... and it is signed too
    assert listed(root)["uki_signed"] is True
    consistent(root)


def test_without_a_db_key_the_uki_is_unsigned_and_says_so(pkg: Path, db: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    inst = install_package(pkg, root, layout="uki", initramfs="none")
    assert inst.uki is not None and inst.uki_signer == ""
    assert not verify_efi(inst.uki, db / "db.crt")[0]
    kernel = listed(root)
    assert kernel["uki_signed"] is False and kernel["uki_signer"] == ""
    assert "unsigned" in cli("list", "--root", root).out
    run = cli("install", pkg, "--root", make_root(tmp_path / "r2"), "--layout", "plain", "--json")
    assert run.code == 0 and run.json()["uki_signed"] is None  # no UKI: nothing to sign


def test_a_lone_db_key_is_refused_with_nothing_installed(pkg: Path, db: Path, tmp_path: Path) -> None:
    root = root_with_db(tmp_path / "r", db)
    (root / ROOT_DB_DIR / ROOT_DB_CRT).unlink()
    run = cli("install", pkg, "--root", root, "--layout", "uki", "--initramfs", "none")
    assert run.code == 2 and "only one of" in run.err and "Traceback" not in run.err
    assert not (root / "boot/EFI/Linux").exists() or not any((root / "boot/EFI/Linux").iterdir())
    assert cli("list", "--root", root, "--json").json()["kernels"] == []


@pytest.mark.kernel
def test_real_kernel_uki_signed_at_install(default_package: Built, db: Path, tmp_path: Path) -> None:
    root = root_with_db(tmp_path / "r", db)
    inst = install_package(default_package.package, root, layout="uki", initramfs="builtin")
    assert inst.uki is not None and inst.uki_signer
    ok, line = verify_efi(inst.uki, db / "db.crt")
    assert ok, line
    consistent(root)
