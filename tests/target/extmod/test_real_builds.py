"""Real builds of the test modules against the default package's headers tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from distkernel.build.trust.keys import MODULE_CRT, generate_keys
from distkernel.target.extmod import for_kernel, registry
from distkernel.target.extmod.placement import depmod
from distkernel.target.extmod.signing import KEY_DIR
from tests.target.extmod.conftest import EXTMOD, RealKernel, root_with_modules

pytestmark = pytest.mark.kernel

SIGNATURE_TRAILER = b"~Module signature appended~\n"


def modinfo(path: Path, field: str) -> str:
    return subprocess.run(["modinfo", "-F", field, path], capture_output=True, text=True, check=True).stdout.strip()


def test_plain_dkms_and_broken_modules(real_kernel: RealKernel, tmp_path: Path) -> None:
    root = tmp_path / "root"
    moddir = root_with_modules(root, real_kernel)
    for name in ("plain", "dkms", "broken"):
        registry.add(root, EXTMOD / name)
    outcomes = {o.name: o for o in for_kernel.build_for_kernel(root, real_kernel.release, real_kernel.headers, moddir)}
    assert outcomes["plain"].files == ("updates/dk_plain.ko",)
    assert outcomes["dk_dkms"].files == ("extra/dk_dkms.ko", "updates/dkms/dk_dkms_extra.ko")
    for rel in (*outcomes["plain"].files, *outcomes["dk_dkms"].files):
        assert modinfo(moddir / rel, "vermagic").split()[0] == real_kernel.release
        assert b".debug_info" not in (moddir / rel).read_bytes()  # stripped like the kernel's own
    broken = outcomes["broken"]
    assert not broken.ok and "this_symbol_does_not_exist" in broken.reason and "error" in broken.reason
    assert broken.log is not None and "dk_broken.c" in broken.log.read_text()
    depmod(moddir, real_kernel.release)
    dry = subprocess.run(
        ["modprobe", "--dry-run", "--show-depends", "-d", root, "-S", real_kernel.release, "dk_dkms_extra"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "updates/dkms/dk_dkms_extra.ko" in dry.stdout


@pytest.fixture
def signing_headers(real_kernel: RealKernel, tmp_path: Path) -> Path:
    """The real headers as a kernel that signs modules would have them (signing reads
    only .config; the build itself is the same)."""
    headers = tmp_path / "headers"
    shutil.copytree(real_kernel.headers, headers, symlinks=True)
    config = headers / ".config"
    config.write_text(config.read_text() + 'CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_HASH="sha256"\n')
    return headers


def test_modules_are_signed_with_the_roots_key(real_kernel: RealKernel, signing_headers: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    moddir = root_with_modules(root, real_kernel)
    registry.add(root, EXTMOD / "plain")
    [unsigned] = for_kernel.build_for_kernel(root, real_kernel.release, signing_headers, moddir)
    assert (unsigned.ok, unsigned.signed) == (True, "unsigned")
    assert not (moddir / "updates/dk_plain.ko").read_bytes().endswith(SIGNATURE_TRAILER)
    keys = generate_keys(root / KEY_DIR)
    [signed] = for_kernel.build_for_kernel(root, real_kernel.release, signing_headers, moddir)
    assert (signed.ok, signed.signed) == (True, "signed"), signed.reason
    ko = moddir / "updates/dk_plain.ko"
    assert ko.read_bytes().endswith(SIGNATURE_TRAILER)
    cert = x509.load_pem_x509_certificate(keys.path(MODULE_CRT).read_bytes())
    assert int(modinfo(ko, "sig_key").replace(":", ""), 16) == cert.serial_number  # sign-file names issuer + serial
    assert modinfo(ko, "signer") == "distkernel module signing key"


def test_with_v1_the_reason_is_gccs_error_not_a_command_line(real_kernel: RealKernel, tmp_path: Path) -> None:
    src = tmp_path / "broken-v1"
    shutil.copytree(EXTMOD / "broken", src)
    (src / "dkms.conf").write_text(
        'PACKAGE_NAME=broken_v1\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=dk_broken\nDEST_MODULE_LOCATION[0]="/extra"\n'
        'AUTOINSTALL=yes\nMAKE[0]="make -C $kernel_source_dir M=$PWD V=1"\n'
    )
    root = tmp_path / "root"
    moddir = root_with_modules(root, real_kernel)
    registry.add(root, src)
    [o] = for_kernel.build_for_kernel(root, real_kernel.release, real_kernel.headers, moddir)
    assert o.log is not None and "-Werror=" in o.log.read_text()  # V=1: gcc's command lines are in the output
    assert o.reason.startswith("dk_broken.c:") and ": error: " in o.reason and "this_symbol_does_not_exist" in o.reason
