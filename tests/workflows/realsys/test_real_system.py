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

The grub walk does the same life with the grub layout, the root's own grub-install and,
in the guest, its own grub-mkconfig, into whose grub.cfg distkernel's /etc/grub.d script
puts its entries and the trial (no module, to keep it short): distkernel's mark-good unit
(placed by `distkernel install`, in both walks) marks each good boot, which is what ends
a trial there; a kernel that panics is booted 3 times by GRUB's tries in its environment
block, then GRUB boots the known-good kernel; `list` says BAD.

Run alone: pytest -s -m extended tests/workflows/realsys (the console milestones are printed)."""

from __future__ import annotations

import contextlib
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
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
TRIES = 3  # the bls and grub layouts' counter (target/data/layouts.toml)
DKMS_TREE = "usr/src/dk_dkms-1.2"
BOOT_S = 600  # firmware to the report line, TCG on a loaded 2-core machine
UPGRADE_S = 900  # fetch, module build under TCG, initramfs, entry
PLAN_FAILED = r"REALSYS plan: exit=[1-9]"

# distkernel's mark-good unit, as `distkernel install` placed it (not copied by the test);
# an initrd.img-RELEASE in /boot would be initramfs-tools' hook's, which the installs skip.
UNIT_STATE = (
    'echo "unit: $(systemctl is-enabled distkernel-mark-good.service)"; '
    "ls /boot | sed -n 's/^initrd.img-/initramfs-tools made: /p'"
)
FOREIGN_INITRD = "initramfs-tools made: "

PLAN = """#!/bin/sh
set -e
boot_files() {{
    {unit}
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

# The grub walk: no module; each step shows GRUB's environment block (our variables:
# the release on trial and its tries left) and distkernel's list.
GRUB_PLAN = """#!/bin/sh
set -e
boot_files() {{
    {unit}
    grep -q '^### BEGIN /etc/grub.d/09_distkernel' /boot/grub/grub.cfg && echo 'grub.cfg: with 09_distkernel' || true
    grep '^distkernel_' /boot/grub/grubenv | sed 's/^/grubenv: /' || true
    distkernel list --json | python3 -c '{lister}'
}}
case "$1" in
{first})
    echo "step: marked good"
    boot_files
    echo "step: install --from"
    distkernel install {name}@{next} --from {url}
    boot_files
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
    echo "step: marked good"
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
    """The report unit's state line for RELEASE; `running` or the failed units. This is
    how a boot is seen to reach multi-user.target (`is-system-running --wait`): systemd's
    own "Reached target" line is not on the console once the report unit, which writes
    there, has started (it starts after the mark-good unit, just before the target)."""
    m = guest.expect(r"REALSYS state=(\S+) release=(\S+)", BOOT_S, what=f"boot of {release}")
    assert m.group(2) == release, m.group(0)
    if m.group(1) != "running":
        failed = []
        for _ in range(20):
            failed.append(guest.expect(r"REALSYS (failed|plan): .*", 30, what="failed units").group(0))
        pytest.fail(f"{release}: systemd reports {m.group(1)}: {failed}")


@dataclass(frozen=True)
class Kernels:
    """The first kernel (signed), the binhost's next and trial kernels, their releases."""

    first: Path
    name: str
    releases: tuple[str, str, str]  # first, next, trial
    repo: Path


@pytest.fixture(scope="module")
def kernels(rich_package: Built, tmp_path_factory: pytest.TempPathFactory, keys: KeySet) -> Kernels:
    tmp = tmp_path_factory.mktemp("realsys-kernels")
    first = rich_package.metadata["kernel_release"]
    nxt = _kernel(tmp, keys, NEXT_LOCALVERSION)
    second = nxt.metadata["kernel_release"]
    assert second != first and second.endswith(NEXT_LOCALVERSION)
    bad = _kernel(tmp, keys, TRIAL_LOCALVERSION, "CONFIG_CMDLINE_BOOL=y", f'CONFIG_CMDLINE="{TRIAL_CMDLINE}"')
    trial = bad.metadata["kernel_release"]
    assert trial.endswith(TRIAL_LOCALVERSION) and bad.metadata["name"] == nxt.metadata["name"]
    repo = tmp / "binhost"
    assert cli("repo", "init", repo, "--key", keys.path(PACKAGE_KEY)).code == 0
    for built in (nxt, bad):
        assert cli("repo", "add", repo, built.package).code == 0
    signed = _signed(rich_package.package, tmp, keys)
    return Kernels(signed, nxt.metadata["name"], (first, second, trial), repo)


@contextlib.contextmanager
def _running(disk: Path, work: Path, repo: Path) -> Iterator[Guest]:
    """The guest with the binhost served; the console milestones printed at the end."""
    with served(repo) as url:
        guest = Guest.start(disk, work, binhost_port=urllib.parse.urlsplit(url).port)
        try:
            yield guest
        finally:
            guest.stop()
            print(f"\nconsole milestones of {work.name} (seconds since qemu started):")
            for m in guest.milestones:
                print(f"  {m.seconds:7.1f}  {m.line}")


def _falls_back(guest: Guest, second: str, trial: str) -> None:
    """Nobody acts: each try of TRIAL panics and reboots, then SECOND reports running."""
    for i in range(1, TRIES + 1):
        again = rf"Linux version {second} "
        guest.expect(rf"Linux version {trial} ", BOOT_S, what=f"try {i} of the trial kernel", unless=again)
        guest.expect(r"Kernel panic - not syncing", BOOT_S, what=f"try {i} panics", panics=True)
    guest.expect(
        rf"Linux version {second} ", BOOT_S, what="back on the known-good kernel", unless=rf"Linux version {trial} "
    )
    _report(guest, second)


@pytest.mark.kernel
@pytest.mark.extended
def test_a_real_debian_system_boots_upgrades_in_place_rebuilds_its_module_and_falls_back(
    kernels: Kernels, tmp_path: Path, keys: KeySet
) -> None:
    first, second, trial = kernels.releases
    plan = PLAN.format(
        first=first,
        next=second,
        trial=trial,
        dkms=DKMS_TREE,
        name=kernels.name,
        url=BINHOST_URL,
        lister=LISTER,
        unit=UNIT_STATE,
    )
    disk = system_image(
        tmp_path,
        kernels.first,
        plan=plan,
        trusted=keys.path(PACKAGE_PUB),
        files={DKMS_TREE: DATA / "extmod" / "dkms"},
    )
    with _running(disk, tmp_path, kernels.repo) as guest:
        guest.expect(rf"Linux version {first} ", BOOT_S, what="first boot")
        _report(guest, first)
        for step in ("modules add", "install --from"):
            guest.expect(f"REALSYS plan: step: {step}$", UPGRADE_S, what=step, unless=PLAN_FAILED)
        upgraded = _plan_lines(guest, "reboot", UPGRADE_S)  # its entry on trial, with the counter
        assert any(line.endswith(f"-{second}+{TRIES}.conf") for line in upgraded), upgraded
        guest.expect(rf"Linux version {second} ", BOOT_S, what="reboot into the new kernel")
        _report(guest, second)
        guest.expect(r"REALSYS plan: dk_dkms ", 120, what="the rebuilt module loaded", unless=PLAN_FAILED)

        # Installed on trial, blessed by systemd after this good boot: the plain name.
        blessed = _plan_lines(guest, "install the trial kernel", 120)
        entries = [line for line in blessed if line.startswith("entry: ")]
        assert any(line.endswith(f"-{second}.conf") for line in entries), blessed
        assert not any(second in line and "+" in line for line in entries), blessed
        assert "known_good=yes boot=-" in _kernel_line(blessed, second), blessed
        assert "unit: enabled" in blessed, blessed

        # The trial kernel, newest, on trial, the default while it has tries.
        installed = _plan_lines(guest, "reboot into the trial", UPGRADE_S)
        assert any(line.endswith(f"-{trial}+{TRIES}.conf") for line in installed), installed
        assert "default=yes known_good=no" in _kernel_line(installed, trial), installed
        assert not any(line.startswith(FOREIGN_INITRD) for line in blessed + installed), installed

        _falls_back(guest, second, trial)
        after = _plan_lines(guest, "poweroff", 120)
        assert f"BAD: failed {TRIES} tries" in _kernel_line(after, trial), after
        assert "default=yes known_good=yes" in _kernel_line(after, second), after
        assert any(line.endswith(f"-{trial}+0-{TRIES}.conf") for line in after), after
        assert guest.wait_exit(120) == 0


@pytest.mark.kernel
@pytest.mark.extended
def test_a_real_debian_system_with_grub_boots_marks_good_upgrades_and_falls_back(
    kernels: Kernels, tmp_path: Path, keys: KeySet
) -> None:
    first, second, trial = kernels.releases
    plan = GRUB_PLAN.format(
        first=first, next=second, trial=trial, name=kernels.name, url=BINHOST_URL, lister=LISTER, unit=UNIT_STATE
    )
    disk = system_image(tmp_path, kernels.first, plan=plan, trusted=keys.path(PACKAGE_PUB), files={}, layout="grub")
    on_trial = f"boot=on trial: {TRIES} tries left, 0 done"
    with _running(disk, tmp_path, kernels.repo) as guest:
        guest.expect(rf"Linux version {first} ", BOOT_S, what="first boot (GRUB from the disk)")
        _report(guest, first)
        # distkernel's mark-good unit ran on this good boot: the first kernel is known-good.
        marked = _plan_lines(guest, "install --from", 120)
        assert "default=yes known_good=yes boot=-" in _kernel_line(marked, first), marked
        # That mark-good's commit ran the root's own grub-mkconfig: grub.cfg is Debian's,
        # with distkernel's /etc/grub.d script in it (its entries, the trial below).
        assert "unit: enabled" in marked and "grub.cfg: with 09_distkernel" in marked, marked
        # The next kernel on trial: GRUB's environment block holds its tries.
        upgraded = _plan_lines(guest, "reboot", UPGRADE_S)
        assert f"grubenv: distkernel_trial={second}" in upgraded and f"grubenv: distkernel_tries={TRIES}" in upgraded
        assert not any(line.startswith(FOREIGN_INITRD) for line in upgraded), upgraded
        assert f"default=yes known_good=no {on_trial}" in _kernel_line(upgraded, second), upgraded
        guest.expect(rf"Linux version {second} ", BOOT_S, what="reboot into the new kernel")
        _report(guest, second)
        # GRUB took one try; the good boot's mark-good ended the trial: no tries left in grubenv.
        blessed = _plan_lines(guest, "install the trial kernel", 120)
        assert not any(line.startswith("grubenv: ") for line in blessed), blessed
        assert "default=yes known_good=yes boot=-" in _kernel_line(blessed, second), blessed

        installed = _plan_lines(guest, "reboot into the trial", UPGRADE_S)
        assert f"grubenv: distkernel_trial={trial}" in installed, installed
        assert f"default=yes known_good=no {on_trial}" in _kernel_line(installed, trial), installed

        _falls_back(guest, second, trial)
        after = _plan_lines(guest, "poweroff", 120)
        assert f"BAD: failed {TRIES} tries" in _kernel_line(after, trial), after
        assert "default=yes known_good=yes" in _kernel_line(after, second), after
        assert "grubenv: distkernel_tries=0" in after, after
        assert guest.wait_exit(120) == 0
