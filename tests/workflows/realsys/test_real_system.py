"""The whole life of a kernel on a real Debian system, walked in order on one disk:

1. a Debian root (mmdebstrap, cached) with distkernel from this checkout, on a GPT disk
   with an ESP and an ext4 root made without loop mounts;
2. distkernel installs the rich kernel with the bls layout, the root's bootctl installs
   systemd-boot; OVMF boots the disk (no -kernel, no harness initramfs) and systemd
   reports `running`;
3. inside the guest, `distkernel install NAME --from URL` fetches the next kernel (signed,
   another release) from a binhost on this machine's 127.0.0.1, the guest reboots into it;
5. a dkms module registered in the guest (`distkernel modules add`) is rebuilt for the
   new kernel before its initramfs and loads after the reboot;
4. the new kernel's entry was installed on trial (`+3`); after its good boot systemd's
   boot-complete.target and systemd-bless-boot renamed it to the plain name (known-good);
   then a kernel that panics is installed from the binhost as the default: with nobody
   acting, systemd-boot tries it 3 times (each panic reboots) and the machine comes back
   up on the known-good kernel; `distkernel list` in the guest says the trial is BAD.

Run alone: pytest -s -m extended tests/workflows/realsys (the console milestones are printed)."""

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
# A newer version than .next (systemd-boot's order: the trial must be the newest entry so
# that loader.conf's `default TOKEN-*` selects it while it has tries, then falls back).
TRIAL_LOCALVERSION = "-distkernel.trial"
# Built into the trial kernel: no rdinit, so the kernel mounts root= itself, and it
# cannot resolve the boot loader's root=UUID=...: a panic, then panic=-1 reboots.
TRIAL_CMDLINE = "rdinit=/no-such-init"
TRIES = 3  # the bls layout's counter (target/data/layouts.toml)
DKMS_TREE = "usr/src/dk_dkms-1.2"
BOOT_S = 600  # firmware to the report line, TCG on a loaded 2-core machine
UPGRADE_S = 900  # fetch, module build under TCG, initramfs, entry
PLAN_FAILED = r"REALSYS plan: exit=[1-9]"

PLAN = """#!/bin/sh
set -e
boot_files() {{
    ls /boot/efi/loader/entries | sed 's/^/entry: /'
    sed -n 's/^default /loader.conf default: /p' /boot/efi/loader/loader.conf
    distkernel list --json | python3 -c '{lister}'
}}
case "$1" in
{first})
    echo "step: modules add"
    distkernel modules add /{dkms}
    echo "step: install --from"
    distkernel install {name}@{next} --from {url}
    distkernel list
    echo "step: reboot"
    systemctl reboot
    ;;
{next})
    if [ -e /var/lib/realsys/trial-installed ]; then
        echo "step: back on the known-good kernel"
        boot_files
        echo "step: poweroff"
        systemctl poweroff
        exit 0
    fi
    echo "step: modprobe"
    modprobe dk_dkms
    lsmod | grep '^dk_dkms '
    echo "step: blessed"
    boot_files
    echo "step: install the trial kernel"
    distkernel install {name}@{trial} --from {url}
    mkdir -p /var/lib/realsys
    touch /var/lib/realsys/trial-installed
    boot_files
    echo "step: reboot into the trial"
    systemctl reboot
    ;;
esac
"""

# `distkernel list --json` as one short line per kernel (the table would wrap on the console).
LISTER = (
    "import json, sys\n"
    'for k in json.load(sys.stdin)["kernels"]:\n'
    '    print("kernel:", k["release"], "default=" + ("yes" if k["default"] else "no"),'
    ' "known_good=" + ("yes" if k["known_good"] else "no"), "boot=" + (k["boot"] or "-"))\n'
)


def _signed(package: Path, tmp: Path, keys: KeySet) -> Path:
    """A signed copy: a root that trusts a key installs only packages signed by it."""
    copy = tmp / package.name
    shutil.copyfile(package, copy)
    assert cli("sign", copy, "--key", keys.path(PACKAGE_KEY)).code == 0
    return copy


def _kernel(tmp: Path, keys: KeySet, localversion: str, *sets: str) -> Built:
    """The rich recipe again with another localversion (and SETS): another release,
    built mostly from ccache; signed, as a binhost serves it."""
    out = tmp / f"out{localversion}"
    options = [f'CONFIG_LOCALVERSION="{localversion}"', *sets]  # overrides the recipe's: not strict
    run = cli("build", RICH_RECIPE, "--no-strict", *(a for o in options for a in ("--set", o)), "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    pkg = Path(doc["package"])
    assert cli("sign", pkg, "--key", keys.path(PACKAGE_KEY)).code == 0
    return Built(pkg, doc["metadata"], doc)


def _plan_lines(guest: Guest, step: str, timeout: float) -> list[str]:
    """The plan's lines (prefix removed) printed before `step: STEP`, which this waits for."""
    n = len(guest.seen)
    guest.expect(f"REALSYS plan: step: {step}$", timeout, what=step, unless=PLAN_FAILED)
    return [line.split("REALSYS plan: ", 1)[1].strip() for line in guest.seen[n:-1] if "REALSYS plan: " in line]


def _kernel_line(lines: list[str], release: str) -> str:
    found = [line for line in lines if line.startswith(f"kernel: {release} ")]
    assert len(found) == 1, lines
    return found[0]


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
def test_a_real_debian_system_boots_upgrades_in_place_rebuilds_its_module_and_falls_back(
    rich_package: Built, tmp_path: Path, keys: KeySet
) -> None:
    first = rich_package.metadata["kernel_release"]
    nxt = _kernel(tmp_path, keys, NEXT_LOCALVERSION)
    second = nxt.metadata["kernel_release"]
    assert second != first and second.endswith(NEXT_LOCALVERSION)
    bad = _kernel(tmp_path, keys, TRIAL_LOCALVERSION, "CONFIG_CMDLINE_BOOL=y", f'CONFIG_CMDLINE="{TRIAL_CMDLINE}"')
    trial = bad.metadata["kernel_release"]
    assert trial.endswith(TRIAL_LOCALVERSION) and bad.metadata["name"] == nxt.metadata["name"]
    repo = tmp_path / "binhost"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    for built in (nxt, bad):
        assert cli("repo", "add", repo, built.package).code == 0

    plan = PLAN.format(
        first=first, next=second, trial=trial, dkms=DKMS_TREE, name=nxt.metadata["name"], url=BINHOST_URL, lister=LISTER
    )
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
            for step in ("modules add", "install --from"):
                guest.expect(f"REALSYS plan: step: {step}$", UPGRADE_S, what=step, unless=PLAN_FAILED)
            upgraded = _plan_lines(guest, "reboot", UPGRADE_S)  # its entry on trial, with the counter
            assert any(line.endswith(f"-{second}+{TRIES}.conf") for line in upgraded), upgraded
            guest.expect(rf"Linux version {second} ", BOOT_S, what="reboot into the new kernel")
            guest.expect(r"Reached target .*Multi-User System", BOOT_S, what="second boot")
            _report(guest, second)
            guest.expect(r"REALSYS plan: dk_dkms ", 120, what="the rebuilt module loaded", unless=PLAN_FAILED)

            # Installed on trial, blessed by systemd after this good boot: the plain name.
            blessed = _plan_lines(guest, "install the trial kernel", 120)
            entries = [line for line in blessed if line.startswith("entry: ")]
            assert any(line.endswith(f"-{second}.conf") for line in entries), blessed
            assert not any(second in line and "+" in line for line in entries), blessed
            assert "known_good=yes boot=-" in _kernel_line(blessed, second), blessed

            # The trial kernel, newest, on trial, the default while it has tries.
            installed = _plan_lines(guest, "reboot into the trial", UPGRADE_S)
            assert any(line.endswith(f"-{trial}+{TRIES}.conf") for line in installed), installed
            assert "default=yes known_good=no" in _kernel_line(installed, trial), installed

            # Nobody acts: each try panics and reboots, then the known-good kernel.
            for i in range(1, TRIES + 1):
                again = rf"Linux version {second} "
                guest.expect(rf"Linux version {trial} ", BOOT_S, what=f"try {i} of the trial kernel", unless=again)
                guest.expect(r"Kernel panic - not syncing", BOOT_S, what=f"try {i} panics", panics=True)
            guest.expect(
                rf"Linux version {second} ",
                BOOT_S,
                what="back on the known-good kernel",
                unless=rf"Linux version {trial} ",
            )
            guest.expect(r"Reached target .*Multi-User System", BOOT_S, what="fallback boot")
            _report(guest, second)
            after = _plan_lines(guest, "poweroff", 120)
            assert f"BAD: failed {TRIES} tries" in _kernel_line(after, trial), after
            assert "default=yes known_good=yes" in _kernel_line(after, second), after
            assert any(line.endswith(f"-{trial}+0-{TRIES}.conf") for line in after), after
            assert guest.wait_exit(120) == 0
        finally:
            guest.stop()
            print("\nconsole milestones (seconds since qemu started):")
            for m in guest.milestones:
                print(f"  {m.seconds:7.1f}  {m.line}")
