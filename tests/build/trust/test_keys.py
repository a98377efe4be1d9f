"""`distkernel key generate`: the three kinds of keys, modes, and no overwriting."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from distkernel.build.trust.keys import ALL, MODULE_CRT, MODULE_PEM, PRIVATE, KeySet
from distkernel.build.trust.modsign import module_signer
from distkernel.core.errors import UserError
from tests.conftest import assert_user_facing_error, cli


def test_generate_writes_every_key_with_private_files_0600(tmp_path: Path) -> None:
    run = cli("key", "generate", "--out", tmp_path / "k", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    for name in ALL:
        mode = stat.S_IMODE((tmp_path / "k" / name).stat().st_mode)
        assert mode == (0o600 if name in PRIVATE else 0o644), (name, oct(mode))
    assert set(doc["fingerprints"]) == {"package", "modules", "secureboot"}


def test_module_certificate_is_for_code_signing(keys: KeySet) -> None:
    cert = x509.load_pem_x509_certificate(keys.path(MODULE_CRT).read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CODE_SIGNING in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # openssl agrees, and the PEM the kernel gets holds both key and certificate
    text = subprocess.run(
        ["openssl", "x509", "-in", keys.path(MODULE_PEM), "-noout", "-ext", "extendedKeyUsage"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Code Signing" in text
    signer = module_signer(keys.path(MODULE_PEM))
    assert signer.subject == "distkernel module signing key"
    assert signer.fingerprint == keys.module_fingerprint


def test_generate_never_overwrites(tmp_path: Path) -> None:
    assert cli("key", "generate", "--out", tmp_path).code == 0
    before = (tmp_path / "package.key").read_bytes()
    run = cli("key", "generate", "--out", tmp_path)
    assert_user_facing_error(run, 2, "already holds", "never overwritten")
    assert (tmp_path / "package.key").read_bytes() == before


def test_module_key_without_its_certificate_is_refused(tmp_path: Path, keys: KeySet) -> None:
    only_key = tmp_path / "key-only.pem"
    text = keys.path(MODULE_PEM).read_text()
    only_key.write_text(text[: text.index("-----BEGIN CERTIFICATE-----")])
    with pytest.raises(UserError, match="no PEM certificate"):
        module_signer(only_key)
