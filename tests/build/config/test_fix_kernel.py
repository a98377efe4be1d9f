"""The fix goes all the way down, on the real 6.1 tree: one line with every value a
request needs (MODULES, then BLOCK for ext4; NET and EVENTFD for vhost-net), hidden
prompts, `||` (the cheapest way), strings and numbers, derived values; and applying
the fixes makes the requests take (one olddefconfig for all of them)."""

from __future__ import annotations

import pytest

from distkernel.build.config.assemble import ResolvedConfig
from distkernel.build.config.report import ConfigEntry
from tests.build.config.conftest import Resolve
from tests.core.test_progress import Recorder

pytestmark = pytest.mark.kernel

# Requests that do not take on tinyconfig, each for another reason.
REQUESTS = {
    "CONFIG_EXT4_FS": "m",  # =m without MODULES, and fs/Kconfig's `if BLOCK`
    "CONFIG_VHOST_NET": "m",  # MODULES, `if VHOST_MENU`, `depends on NET && EVENTFD`
    "CONFIG_NR_CPUS": "64",  # an int whose prompt is `if SMP && !MAXSMP`
    "CONFIG_X86_X2APIC": "y",  # `IRQ_REMAP || HYPERVISOR_GUEST`: the second is cheaper
    "CONFIG_CMDLINE": '"quiet"',  # a string behind CMDLINE_BOOL
    "CONFIG_NODES_SHIFT": "6",  # NUMA, which needs SMP: a second level
    "CONFIG_HZ": "300",  # no prompt: follows the choice member HZ_300
}


def entry(resolved: ResolvedConfig, symbol: str) -> ConfigEntry:
    return next(e for e in resolved.report.entries if e.symbol == symbol)


def fragment(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def test_every_fix_is_whole_and_applying_them_makes_the_requests_take(resolve: Resolve) -> None:
    progress = Recorder()
    r = resolve(
        'base = "tinyconfig"\nfragments = ["asks.config"]',
        {"asks.config": fragment(REQUESTS) + "CONFIG_LSM=y\nCONFIG_DEFAULT_MMAP_MIN_ADDR=lots\n"},
        progress,
    )
    assert progress.stages == ["config: base", "config: merge", "config: olddefconfig", "config: explain"]

    ext4 = entry(r, "CONFIG_EXT4_FS")
    assert ext4.fix == ("CONFIG_MODULES=y", "CONFIG_BLOCK=y"), ext4.reason
    assert "=m needs CONFIG_MODULES=y" in (ext4.reason or "")
    assert "fix: add CONFIG_MODULES=y, CONFIG_BLOCK=y, then CONFIG_EXT4_FS=m takes" in (ext4.reason or "")
    assert ext4.to_json()["fix"] == ["CONFIG_MODULES=y", "CONFIG_BLOCK=y"]

    vhost = entry(r, "CONFIG_VHOST_NET")
    assert {"CONFIG_MODULES=y", "CONFIG_NET=y", "CONFIG_EVENTFD=y", "CONFIG_VHOST_MENU=y"} == set(vhost.fix)
    assert vhost.fix[0] == "CONFIG_MODULES=y" and (vhost.reason or "").count("fix: ") == 1

    cpus = entry(r, "CONFIG_NR_CPUS")
    assert "its prompt is hidden: `SMP && !MAXSMP` is n" in (cpus.reason or "")
    assert cpus.fix == ("CONFIG_SMP=y",) and "then CONFIG_NR_CPUS=64 takes" in (cpus.reason or "")

    x2apic = entry(r, "CONFIG_X86_X2APIC")
    assert "`IRQ_REMAP || HYPERVISOR_GUEST`" in (x2apic.reason or "")
    assert "cheapest way: HYPERVISOR_GUEST (1 change; IRQ_REMAP needs " in (x2apic.reason or "")
    assert x2apic.fix == ("CONFIG_HYPERVISOR_GUEST=y",)

    cmdline = entry(r, "CONFIG_CMDLINE")
    assert 'then CONFIG_CMDLINE="quiet" takes' in (cmdline.reason or "") and cmdline.fix == ("CONFIG_CMDLINE_BOOL=y",)

    nodes = entry(r, "CONFIG_NODES_SHIFT")
    assert nodes.fix == ("CONFIG_SMP=y", "CONFIG_NUMA=y")
    assert "(CONFIG_NUMA needs CONFIG_SMP=y)" in (nodes.reason or "")

    hz = entry(r, "CONFIG_HZ")
    assert "has no prompt" in (hz.reason or "") and hz.fix == ("CONFIG_HZ_300=y",)

    lsm = entry(r, "CONFIG_LSM")
    assert 'CONFIG_LSM is a string option: its value is a quoted string, e.g. CONFIG_LSM="landlock,' in (
        lsm.reason or ""
    )
    assert "CONFIG_LSM=y" not in (lsm.reason or "") and not lsm.fix
    mmap = entry(r, "CONFIG_DEFAULT_MMAP_MIN_ADDR")
    assert "is an int option: its value is a decimal number, e.g. CONFIG_DEFAULT_MMAP_MIN_ADDR=4096" in (
        mmap.reason or ""
    )
    assert all("CONFIG_" + n + "=y" not in (entry(r, "CONFIG_" + n).reason or "") for n in ("CMDLINE", "NR_CPUS", "HZ"))

    fixes = {line.partition("=")[0]: line.partition("=")[2] for e in r.report.misses for line in e.fix}
    again = resolve('base = "tinyconfig"\nfragments = ["fix.config"]', {"fix.config": fragment(fixes | REQUESTS)})
    missed = {e.symbol: e.reason for e in again.report.misses}
    assert missed == {}, missed
