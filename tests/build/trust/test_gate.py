"""Signed packages: `verify --key`, and the install-time gate of a root that trusts keys."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from distkernel.build.package.reader import check_package
from distkernel.build.trust.gate import TRUSTED_DIR, require_trusted
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.core.errors import UserError
from tests.build.trust.helpers import tiny_package
from tests.conftest import cli


def trusting_root(tmp_path: Path, keys: KeySet) -> Path:
    root = tmp_path / "root"
    (root / TRUSTED_DIR).mkdir(parents=True)
    shutil.copyfile(keys.path(PACKAGE_PUB), root / TRUSTED_DIR / "build-server.pub")
    return root


def test_verify_key_accepts_the_signer_and_refuses_others(tmp_path: Path, keys: KeySet, other_keys: KeySet) -> None:
    pkg = tiny_package(tmp_path, key=keys.path(PACKAGE_KEY))
    ok = cli("verify", pkg, "--key", keys.path(PACKAGE_PUB), "--json")
    assert ok.code == 0, ok.err
    assert ok.json()["signed_by"] == keys.package_fingerprint
    bad = cli("verify", pkg, "--key", other_keys.path(PACKAGE_PUB))
    assert bad.code == 1
    assert "not trusted" in bad.err and "Traceback" not in bad.err


def test_verify_key_refuses_an_unsigned_package(tmp_path: Path, keys: KeySet) -> None:
    pkg = tiny_package(tmp_path)
    run = cli("verify", pkg, "--key", keys.path(PACKAGE_PUB))
    assert run.code == 1
    assert "manifest.sig: not signed" in run.err


def test_gate_without_trusted_keys_accepts_unsigned(tmp_path: Path) -> None:
    require_trusted(tmp_path / "root", check_package(tiny_package(tmp_path)))


def test_gate_accepts_a_package_signed_by_a_trusted_key(tmp_path: Path, keys: KeySet) -> None:
    root = trusting_root(tmp_path, keys)
    require_trusted(root, check_package(tiny_package(tmp_path, key=keys.path(PACKAGE_KEY))))


@pytest.mark.parametrize("signed_by", ["nobody", "other"])
def test_gate_refuses_missing_or_untrusted_signature(
    tmp_path: Path, keys: KeySet, other_keys: KeySet, signed_by: str
) -> None:
    root = trusting_root(tmp_path, keys)
    key = other_keys.path(PACKAGE_KEY) if signed_by == "other" else None
    with pytest.raises(UserError, match="not signed" if key is None else "not trusted"):
        require_trusted(root, check_package(tiny_package(tmp_path, key=key)))


def test_gate_refuses_a_forged_signature_and_a_manifest_mismatch(tmp_path: Path, keys: KeySet) -> None:
    root = trusting_root(tmp_path, keys)
    result = check_package(tiny_package(tmp_path, key=keys.path(PACKAGE_KEY)))
    assert result.manifest is not None
    # The signature covers the manifest's bytes as read: another sha256 in them is a forgery.
    sha = result.manifest.files["kernel/vmlinuz"].sha256.encode()
    result = dataclasses.replace(result, manifest_bytes=result.manifest_bytes.replace(sha, b"0" * 64))
    with pytest.raises(UserError, match="bad signature"):
        require_trusted(root, result)
    result.problems.append("kernel/vmlinuz: sha256 differs from the manifest")
    with pytest.raises(UserError, match="does not match its manifest"):
        require_trusted(tmp_path / "no-policy", result)
