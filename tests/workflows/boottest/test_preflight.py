"""What `distkernel test` refuses before booting (exit 2, naming the option and a fix that
exists), and a KVM that was asked for but cannot run (exit 3), all at once: no qemu run."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.package.format import Metadata
from distkernel.build.package.writer import Member, write_package
from distkernel.workflows.boottest.accel import kvm_problem
from distkernel.workflows.boottest.profile import profile
from tests.build.package.images import fake_image
from tests.conftest import assert_user_facing_error, cli
from tests.target.install.helpers import make_root

BOOTS = b"CONFIG_MODULES=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_EFI=y\nCONFIG_EFI_STUB=y\n"


def package(out: Path, config: bytes = BOOTS, modules: tuple[str, ...] = ("hello",), test: object = None) -> Path:
    meta = Metadata(
        name="pre",
        variant="",
        kernel_release="6.1.0-pre",
        version="6.1.0",
        arch="x86_64",
        recipe_sha256="0" * 64,
        config_sha256="0" * 64,
        source={"origin": "test"},
        toolchain={},
        build_date=0,
        sizes={},
        image="kernel/vmlinuz",
        modules=list(modules),
        extra={"test": test} if test is not None else {},
    )
    members = [
        Member("kernel/vmlinuz", data=fake_image("x86_64", "6.1.0-pre")),
        Member("kernel/config", data=config),
        Member("kernel/System.map", data=b"ffffffff81000000 T _text\n"),
        Member("headers/.config", data=config),
        *(Member(f"modules/kernel/{m}.ko", data=b"\x7fELF fake") for m in modules),
    ]
    return write_package(out, meta, members)


def test_uefi_boot_of_a_kernel_without_efi_stub_is_refused_at_once(tmp_path: Path) -> None:
    pkg = package(tmp_path, config=BOOTS.replace(b"CONFIG_EFI_STUB=y\n", b""))
    run = cli("test", pkg, "--firmware", "uefi", "--layout", "uki")
    assert_user_facing_error(run, 2, "CONFIG_EFI_STUB", "--firmware bios")


def test_kernel_without_initrd_support_names_an_option_test_has(tmp_path: Path) -> None:
    pkg = package(tmp_path, config=b"CONFIG_MODULES=y\n")
    run = cli("test", pkg)
    assert_user_facing_error(run, 2, "CONFIG_BLK_DEV_INITRD=y")
    assert "--initramfs" not in run.err  # `test` has no such option


def test_a_module_the_package_lacks_is_bad_input_before_any_boot(tmp_path: Path) -> None:
    pkg = package(tmp_path)
    run = cli("test", pkg, "--module", "hello", "--module", "no_such_module")
    assert_user_facing_error(run, 2, "--module no_such_module", "has no module no_such_module", "hello")
    pkg = package(tmp_path / "t", test={"modules": ["missing_one"]})
    run = cli("test", pkg)
    assert_user_facing_error(run, 2, "metadata test.modules missing_one", "fix the recipe's [test] modules")


@pytest.mark.skipif(kvm_problem(profile("x86_64")) is None, reason="KVM works on this host")
def test_forced_kvm_that_cannot_run_is_a_harness_error_not_a_tcg_pass(tmp_path: Path) -> None:
    run = cli("test", package(tmp_path), "--accel", "kvm", "--json")
    assert_user_facing_error(run, 3, "--accel kvm: KVM cannot run this guest here", "--accel auto")
    assert run.json()["error"]["exit_code"] == 3  # with --json the error is the only document: no boot result


def test_root_without_the_kernel_asked_for(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    run = cli("test", "--root", root)
    assert_user_facing_error(run, 2, "no kernel installed by distkernel there", "distkernel install")
    run = cli("test", "--root", tmp_path / "missing")
    assert_user_facing_error(run, 2, "--root", "not a directory")
    run = cli("test")
    assert_user_facing_error(run, 2, "--root DIR")


def test_a_plain_root_kernel_has_no_uefi_boot_loader(tmp_path: Path) -> None:
    from distkernel.target.install import install_package

    root = make_root(tmp_path / "r")
    install_package(package(tmp_path / "p"), root, layout="plain", initramfs="none")
    run = cli("test", "--root", root, "--firmware", "uefi")
    assert_user_facing_error(run, 2, "--firmware uefi", "plain layout", "--firmware bios")
