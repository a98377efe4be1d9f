"""Explanations on the real 6.1 tree, through the whole config stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.config.assemble import ResolvedConfig
from distkernel.build.config.report import ConfigEntry
from tests.build.config.conftest import Resolve

pytestmark = pytest.mark.kernel


def entry(resolved: ResolvedConfig, symbol: str) -> ConfigEntry:
    return next(e for e in resolved.report.entries if e.symbol == symbol)


def test_tinyconfig_misses_are_explained(resolve: Resolve) -> None:
    r = resolve(
        'base = "tinyconfig"\nfragments = ["a.config"]\n'
        'options = { KVM = "y", KVMM = "y", HZ_1000 = "y", SMP = "m", ACPI = "y", CRC32 = "n" }',
        {"a.config": "CONFIG_HZ_250=y\nCONFIG_MODULES=y\n"},
    )
    kvm = entry(r, "CONFIG_KVM")
    assert not kvm.took and kvm.reason
    assert "VIRTUALIZATION=n (if-block arch/x86/kvm/Kconfig:19)" in kvm.reason
    assert "HIGH_RES_TIMERS=n" in kvm.reason
    assert "fix: add CONFIG_VIRTUALIZATION=y, CONFIG_HIGH_RES_TIMERS=y, then CONFIG_KVM=y takes" in kvm.reason
    assert "did you mean CONFIG_KVM," in (entry(r, "CONFIG_KVMM").reason or "")
    hz = entry(r, "CONFIG_HZ_250")
    assert not hz.took and "choice `Timer frequency`" in (hz.reason or "")
    assert "took CONFIG_HZ_1000" in (hz.reason or "") and "later input wins" in (hz.reason or "")
    assert entry(r, "CONFIG_HZ_1000").took
    assert "is a bool: it cannot be m" in (entry(r, "CONFIG_SMP").reason or "")
    crc = entry(r, "CONFIG_CRC32")
    assert not crc.took and crc.effective == "y"
    assert "selected by CONFIG_ACPI=y (drivers/acpi/Kconfig:" in (crc.reason or "")
    assert entry(r, "CONFIG_MODULES").took and entry(r, "CONFIG_MODULES").overrides[0].origin.where == "base tinyconfig"


def test_m_without_modules(resolve: Resolve) -> None:
    r = resolve('base = "tinyconfig"\noptions = { EXT4_FS = "m" }')
    assert "=m needs CONFIG_MODULES=y" in (entry(r, "CONFIG_EXT4_FS").reason or "")


def test_a_hidden_prompt_on_defconfig(resolve: Resolve, defconfig: Path) -> None:
    r = resolve(f'base = "file:{defconfig}"\noptions = {{ MODIFY_LDT_SYSCALL = "n" }}')
    ldt = entry(r, "CONFIG_MODIFY_LDT_SYSCALL")
    assert not ldt.took and "prompt is hidden: `EXPERT` is n" in (ldt.reason or ""), ldt.reason


def test_the_suggested_chain_takes(resolve: Resolve) -> None:
    r = resolve('base = "tinyconfig"\noptions = { VIRTUALIZATION = "y", HIGH_RES_TIMERS = "y", KVM = "y" }')
    assert not r.report.misses, [e.reason for e in r.report.misses]
