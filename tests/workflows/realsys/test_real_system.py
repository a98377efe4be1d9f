"""The whole life of a kernel on a real Debian system, walked in order on one disk:

1. a Debian root (mmdebstrap, cached) with distkernel from this checkout, on a GPT disk
   with an ESP and an ext4 root made without loop mounts;
2. distkernel installs the rich kernel with the bls layout, the root's bootctl installs
   systemd-boot; OVMF boots the disk (no -kernel, no harness initramfs) and systemd
   reports `running`;
3. inside the guest, `distkernel install NAME --from URL` fetches the next kernel (signed,
   another release) from a binhost on this machine's 127.0.0.1, the guest reboots into it;
5. a dkms module registered in the guest (`distkernel modules add`) is rebuilt for the
   new kernel before its initramfs and loads after the reboot.

Run alone: pytest -s tests/workflows/realsys (the console milestones are printed)."""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest

from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, KeySet
from distkernel.workflows.realsys.guest import BINHOST_URL, Guest
from distkernel.workflows.realsys.system import system_image
from tests.conftest import DATA, RICH_RECIPE, Built, cli
from tests.workflows.repo.conftest import served

NEXT_LOCALVERSION = "-distkernel.next"
DKMS_TREE = "usr/src/dk_dkms-1.2"
BOOT_S = 600  # firmware to the report line, TCG on a loaded 2-core machine
UPGRADE_S = 900  # fetch, module build under TCG, initramfs, entry
PLAN_FAILED = r"REALSYS plan: exit=[1-9]"

PLAN = """#!/bin/sh
set -e
case "$1" in
{first})
    echo "step: modules add"
    distkernel modules add /{dkms}
    echo "step: install --from"
    distkernel install {name} --from {url}
    distkernel list
    echo "step: reboot"
    systemctl reboot
    ;;
{next})
    echo "step: modprobe"
    modprobe dk_dkms
    lsmod | grep '^dk_dkms '
    echo "step: poweroff"
    systemctl poweroff
    ;;
esac
"""


def _signed(package: Path, tmp: Path, keys: KeySet) -> Path:
    """A signed copy: a root that trusts a key installs only packages signed by it."""
    copy = tmp / package.name
    shutil.copyfile(package, copy)
    assert cli("sign", copy, "--key", keys.path(PACKAGE_KEY)).code == 0
    return copy


def _next_kernel(tmp: Path, keys: KeySet) -> Built:
    """The rich recipe again with another localversion: another release, built mostly
    from ccache; signed, as a binhost serves it."""
    out = tmp / "next-out"
    localversion = f'CONFIG_LOCALVERSION="{NEXT_LOCALVERSION}"'  # overrides the recipe's: not strict
    run = cli("build", RICH_RECIPE, "--no-strict", "--set", localversion, "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    pkg = Path(doc["package"])
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    return Built(pkg, doc["metadata"], doc)


def _report(guest: Guest, release: str) -> None:
    """The report unit's state line for RELEASE; `running` or the failed units."""
    m = guest.expect(r"REALSYS state=(\S+) release=(\S+)", BOOT_S, what=f"boot of {release}")
    assert m.group(2) == release, m.group(0)
    if m.group(1) != "running":
        failed = []
        for _ in range(20):
            failed.append(guest.expect(r"REALSYS (failed|plan): .*", 30, what="failed units").group(0))
        pytest.fail(f"{release}: systemd reports {m.group(1)}: {failed}")


@pytest.mark.kernel
@pytest.mark.extended
def test_a_real_debian_system_boots_upgrades_in_place_and_rebuilds_its_module(
    rich_package: Built, tmp_path: Path, keys: KeySet
) -> None:
    first = rich_package.metadata["kernel_release"]
    nxt = _next_kernel(tmp_path, keys)
    second = nxt.metadata["kernel_release"]
    assert second != first and second.endswith(NEXT_LOCALVERSION)
    repo = tmp_path / "binhost"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    assert cli("repo", "add", repo, nxt.package).code == 0

    plan = PLAN.format(first=first, next=second, dkms=DKMS_TREE, name=nxt.metadata["name"], url=BINHOST_URL)
    disk = system_image(
        tmp_path,
        _signed(rich_package.package, tmp_path, keys),
        plan=plan,
        trusted=keys.path(PACKAGE_PUB),
        files={DKMS_TREE: DATA / "extmod" / "dkms"},
    )

    with served(repo) as url:
        port = urllib.parse.urlsplit(url).port
        guest = Guest.start(disk, tmp_path, binhost_port=port)
        try:
            guest.expect(rf"Linux version {first} ", BOOT_S, what="first boot")
            guest.expect(r"Reached target .*Multi-User System", BOOT_S, what="first boot")
            _report(guest, first)
            for step in ("modules add", "install --from", "reboot"):
                guest.expect(f"REALSYS plan: step: {step}$", UPGRADE_S, what=step, unless=PLAN_FAILED)
            guest.expect(rf"Linux version {second} ", BOOT_S, what="reboot into the new kernel")
            guest.expect(r"Reached target .*Multi-User System", BOOT_S, what="second boot")
            _report(guest, second)
            guest.expect(r"REALSYS plan: dk_dkms ", 120, what="the rebuilt module loaded", unless=PLAN_FAILED)
            guest.expect(r"REALSYS plan: step: poweroff$", 60, what="poweroff", unless=PLAN_FAILED)
            assert guest.wait_exit(120) == 0
        finally:
            guest.stop()
            print("\nconsole milestones (seconds since qemu started):")
            for m in guest.milestones:
                print(f"  {m.seconds:7.1f}  {m.line}")
