"""Boot tests of the default recipe's package under qemu (TCG here): PASS through every
firmware/layout pair, and each failure class from a kernel made to fail that way."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distkernel.workflows.boottest import BootOptions, boot_test
from tests.conftest import Built, assert_user_facing_error, cli, env_with

pytestmark = pytest.mark.kernel

# Generous: under load from parallel builds a UEFI boot has taken 18-24 s.
TIMEOUT = "120"


def boot(pkg: Path, tmp_path: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    run = cli("test", pkg, "--json", "--timeout", TIMEOUT, "--log-dir", tmp_path / "logs", *args)
    assert "Traceback" not in run.err, run.err
    return run.code, run.json()


def test_bios_plain_passes_through_pvh(default_package: Built, tmp_path: Path) -> None:
    code, doc = boot(default_package.package, tmp_path)
    assert code == 0, doc
    assert doc["outcome"] == "pass" and doc["passed"]
    assert (doc["firmware"], doc["layout"], doc["boot"]) == ("bios", "plain", "pvh")
    assert doc["modules"] == ["test_module"]  # the recipe's [test] modules, from the package
    assert doc["release"] == default_package.metadata["kernel_release"]
    assert doc["marker_s"] > 0 and doc["accel"] in ("kvm", "tcg") and doc["accel_reason"]
    assert doc["console_log"] is None and not any((tmp_path / "logs").glob("*/*"))  # a pass keeps no log


@pytest.mark.parametrize(("layout", "loader"), [("bls", "systemd-boot"), ("uki", "systemd-boot"), ("grub", "GRUB")])
def test_uefi_layouts_pass_through_their_boot_loader(
    default_package: Built, tmp_path: Path, layout: str, loader: str
) -> None:
    code, doc = boot(default_package.package, tmp_path, "--firmware", "uefi", "--layout", layout, "--keep-logs")
    assert code == 0, doc
    assert doc["boot"] == f"OVMF + {loader}"
    console = Path(doc["console_log"]).read_text(errors="replace")
    # Each loader leaves its trace on the kernel command line or the console.
    trace = {
        "bls": "initrd=\\distkernel\\",  # systemd-boot passes the entry's initrd path
        "uki": "EFI stub: Loaded initrd",
        "grub": "BOOT_IMAGE=/boot/vmlinuz-",
    }[layout]
    assert trace in console


def test_panic_is_classified_retried_and_its_log_kept(default_package: Built, tmp_path: Path) -> None:
    junit = tmp_path / "boot.xml"
    run = cli(
        "test",
        default_package.package,
        "--append",
        "rdinit=/nonexistent",
        "--retries",
        "1",
        "--timeout",
        TIMEOUT,
        "--log-dir",
        tmp_path / "logs",
        "--junit",
        junit,
    )
    assert run.code == 1, run.err
    first = run.out.splitlines()[0]
    assert first.startswith("FAIL qemu-minimal ") and "panic: Kernel panic - not syncing: " in first
    assert "attempt 2/2" in first and "attempt 1: panic" in run.err
    log = Path(run.out.split("console log: ")[1].splitlines()[0])
    assert "Kernel panic - not syncing" in log.read_text(errors="replace")
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None
    failure, rerun = case.find("failure"), case.find("rerunFailure")
    assert failure is not None and failure.get("type") == "panic"
    assert rerun is not None and rerun.get("type") == "panic"


def test_failed_init_check_names_the_module(default_package: Built, tmp_path: Path) -> None:
    """A module the package has but the kernel refuses to load (blacklisted on the command
    line); one the package lacks is refused before booting (test_preflight.py)."""
    code, doc = boot(
        default_package.package, tmp_path, "--module", "test_module", "--append", "module_blacklist=test_module"
    )
    assert code == 1
    assert doc["outcome"] == "init failure"
    assert doc["detail"].startswith("modprobe test_module:")
    assert len(doc["attempts"]) == 1  # not a flaky class: no retry even if asked
    assert Path(doc["console_log"]).is_file()


def test_hang_is_a_timeout(default_package: Built, tmp_path: Path) -> None:
    hang = "#!/bin/busybox sh\necho hanging on purpose\nexec /bin/busybox sleep 1000\n"
    result = boot_test(default_package.package, BootOptions(timeout=15, init=hang, log_dir=tmp_path))
    assert result.final.outcome == "timeout"
    assert result.final.detail.startswith("last console line: ")
    assert result.final.console_log is not None
    assert "hanging on purpose" in result.final.console_log.read_text(errors="replace")
    assert result.exit_code == 1
    assert result.final.qemu_status is None  # we stopped it


def test_combinations_that_cannot_boot_are_user_errors(default_package: Built) -> None:
    run = cli("test", default_package.package, "--layout", "bls")
    assert_user_facing_error(run, 2, "--layout bls", "--firmware uefi")
    run = cli("test", default_package.package, "--firmware", "uefi", "--layout", "plain")
    assert_user_facing_error(run, 2, "--layout plain", "--firmware bios")


def test_missing_qemu_is_a_harness_error(default_package: Built, tmp_path: Path) -> None:
    run = cli("test", default_package.package, env=env_with(PATH=str(tmp_path)))
    assert_user_facing_error(run, 3, "qemu-system-x86_64", "apt-get install")


def test_forced_kvm_passes_under_kvm_or_is_a_harness_error(
    default_package: Built, tmp_path: Path, tmp_cache: dict[str, str]
) -> None:
    """--accel kvm never ends in a TCG pass: on a host whose KVM cannot run guests (kvm-pvm
    here) it is exit 3 at once, or after the first-line guard saw a KVM boot hang."""
    run = cli("test", default_package.package, "--accel", "kvm", "--json", "--timeout", TIMEOUT, env=tmp_cache)
    if run.code == 0:
        assert run.json()["accel"] == "kvm"
        return
    assert_user_facing_error(run, 3, "--accel kvm: KVM", "--accel auto")
