"""Choosing KVM or TCG: the static checks on fake /sys and /proc trees, the cached
verdict of a KVM that hung, and this host's answer."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from distkernel.core.errors import ToolError
from distkernel.workflows.boottest import accel
from distkernel.workflows.boottest.profile import profile


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake host: /dev/kvm, /sys/module and /proc/cpuinfo under tmp_path; a private cache."""
    (tmp_path / "sys").mkdir()
    (tmp_path / "kvm").touch()
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme de pse vmx\n")
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "kvm")
    monkeypatch.setattr(accel, "SYS_MODULES", tmp_path / "sys")
    monkeypatch.setattr(accel, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setenv("DISTKERNEL_CACHE", str(tmp_path / "cache"))
    return tmp_path


needs_x86 = pytest.mark.skipif(platform.machine() != "x86_64", reason="the x86_64 profile runs natively only there")


@needs_x86
def test_kvm_when_everything_is_there(host: Path) -> None:
    (host / "sys" / "kvm_intel").mkdir()
    assert accel.choose(profile("x86_64")).name == "kvm"


@needs_x86
def test_kvm_pvm_is_refused_before_any_boot(host: Path) -> None:
    (host / "sys" / "kvm_pvm").mkdir()
    chosen = accel.choose(profile("x86_64"))
    assert chosen.name == "tcg"
    assert "kvm_pvm" in chosen.reason


@needs_x86
def test_no_hardware_virtualization(host: Path) -> None:
    (host / "cpuinfo").write_text("flags\t\t: fpu vme hypervisor\n")
    assert "no vmx/svm" in accel.choose(profile("x86_64")).reason


@needs_x86
def test_no_device(host: Path) -> None:
    (host / "kvm").unlink()
    assert "no " in accel.choose(profile("x86_64")).reason


@needs_x86
def test_a_hang_is_remembered_for_this_host_boot(host: Path) -> None:
    accel.remember_kvm_hang("no kernel output within 15 s under KVM")
    chosen = accel.choose(profile("x86_64"))
    assert chosen.name == "tcg"
    assert "within 15 s" in chosen.reason


def test_another_arch_never_gets_kvm(host: Path) -> None:
    other = "arm64" if platform.machine() == "x86_64" else "x86_64"
    assert "guest is" in accel.choose(profile(other)).reason


def test_asked_for() -> None:
    """tcg as asked; kvm as asked when it can run here, else an error, never a TCG boot."""
    assert accel.choose(profile("x86_64"), "tcg") == accel.Accel("tcg", "asked for")
    if accel.kvm_problem(profile("x86_64")) is None:
        assert accel.choose(profile("x86_64"), "kvm").name == "kvm"
    else:
        with pytest.raises(ToolError, match="--accel kvm: KVM cannot run this guest here"):
            accel.choose(profile("x86_64"), "kvm")


@pytest.mark.skipif(not os.path.exists("/sys/module/kvm_pvm"), reason="only on a kvm-pvm host")
def test_this_kvm_pvm_host_uses_tcg() -> None:
    chosen = accel.choose(profile("x86_64"))
    assert chosen.name == "tcg" and "kvm_pvm" in chosen.reason
