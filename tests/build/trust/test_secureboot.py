"""Secure-boot signing with sbsign, checked with sbverify: reproducible at build time,
in place at install time when the root holds a db key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distkernel.build.trust.keys import DB_CRT, DB_KEY, KeySet
from distkernel.build.trust.secureboot import ROOT_DB_DIR, sign_efi, sign_for_root, verify_efi
from distkernel.core.errors import UserError

STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")  # a real PE/COFF EFI executable
pytestmark = pytest.mark.skipif(not STUB.is_file(), reason="systemd-boot-efi not installed (see distkernel doctor)")


def test_signed_at_a_pinned_date_is_reproducible_and_verifies(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    log = tmp_path / "sign.log"
    a = sign_efi(STUB, tmp_path / "a.efi", keys.path(DB_KEY), keys.path(DB_CRT), log, date=1700000000)
    b = sign_efi(STUB, tmp_path / "b.efi", keys.path(DB_KEY), keys.path(DB_CRT), log, date=1700000000)
    assert a.read_bytes() == b.read_bytes()
    assert verify_efi(a, keys.path(DB_CRT))[0]
    assert not verify_efi(a, other_keys.path(DB_CRT))[0]
    assert not verify_efi(STUB, keys.path(DB_CRT))[0]  # unsigned


def test_a_non_efi_image_is_refused(tmp_path: Path, keys: KeySet) -> None:
    image = tmp_path / "Image"
    image.write_bytes(b"\x7fELF not a PE")
    with pytest.raises(UserError, match="CONFIG_EFI_STUB"):
        sign_efi(image, tmp_path / "out", keys.path(DB_KEY), keys.path(DB_CRT), tmp_path / "log")
    assert not (tmp_path / "out").exists()


def test_install_time_signing_only_when_the_root_holds_a_db_key(tmp_path: Path, keys: KeySet) -> None:
    uki = tmp_path / "linux.efi"
    shutil.copyfile(STUB, uki)
    root = tmp_path / "root"
    assert not sign_for_root(root, uki, tmp_path / "log")
    assert not verify_efi(uki, keys.path(DB_CRT))[0]
    (root / ROOT_DB_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(DB_KEY), root / ROOT_DB_DIR / "db.key")
    with pytest.raises(UserError, match="only one of"):
        sign_for_root(root, uki, tmp_path / "log")
    shutil.copyfile(keys.path(DB_CRT), root / ROOT_DB_DIR / "db.crt")
    assert sign_for_root(root, uki, tmp_path / "log")
    assert verify_efi(uki, keys.path(DB_CRT))[0]
