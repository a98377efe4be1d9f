"""Automatic fallback, booted for real: a root with a known-good kernel (the default
recipe's) and a newly installed one (the same recipe with another localversion) that
cannot boot: its command line names no init and no root disk, so it panics, and
`panic=1` reboots the machine. OVMF starts the layout's boot loader from a writable disk
holding the root's boot files as install left them (entries, counters, loader.conf or
grub.cfg and grubenv); nobody acts. bls and uki: systemd-boot takes one try per boot by
renaming the new entry or UKI; grub: our grub.cfg counts down in GRUB's environment
block. Either boots the new kernel while it has tries left, then the known-good one,
whose test /init prints the run's marker and powers off. `distkernel list` over the boot files as the machine
left them says the new kernel is bad and names the known-good one as the default."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from distkernel.target.install import load_state
from distkernel.target.install.target import layouts_data
from distkernel.workflows.boottest.disk import FIRST_LBA, MTOOLS_ENV, SECTOR
from distkernel.workflows.boottest.installed import prepare_installed
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.testinit import MARKER, init_script
from tests.conftest import DEFAULT_RECIPE, Built, cli
from tests.target.install.helpers import make_root

pytestmark = [pytest.mark.kernel, pytest.mark.extended]

GOOD_CMDLINE = "console=ttyS0 panic=1"
# No init in the initramfs and no root disk: the kernel panics, then reboots after 1 s.
BAD_CMDLINE = "console=ttyS0 panic=1 rdinit=/no-such-init root=/dev/no-such-disk"
TIMEOUT_S = 900
KERNEL_START = re.compile(r"Linux version (\S+)")


@pytest.fixture(scope="module")
def trial_package(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The default recipe with localversion -trial: another release of the same kernel
    (ccache and the package cache make it cheap after the first time)."""
    out = tmp_path_factory.mktemp("trial-out")
    run = cli("build", DEFAULT_RECIPE, "--no-strict", "--set", 'CONFIG_LOCALVERSION="-trial"', "--out", out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    return Built(Path(doc["package"]), doc["metadata"], doc)


MILESTONE = re.compile(r"Linux version \S+|Kernel panic - not syncing|" + re.escape(MARKER))


def run_console(argv: list[str], console: Path) -> tuple[str, list[tuple[float, str]]]:
    """Run qemu to its end; the console's text and when each milestone line arrived."""
    start = time.monotonic()
    milestones: list[tuple[float, str]] = []
    with open(console, "wb") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        deadline = threading.Timer(TIMEOUT_S, proc.kill)  # a silent hang ends too
        deadline.start()
        try:
            for line in proc.stdout:
                log.write(line)
                found = MILESTONE.search(line.decode(errors="replace"))
                if found:
                    milestones.append((time.monotonic() - start, found.group()))
        finally:
            deadline.cancel()
            proc.kill()
            proc.wait()
    return console.read_text(errors="replace"), milestones


def mtools(disk: Path, *args: str | Path) -> str:
    image = f"{disk}@@{FIRST_LBA * SECTOR}"
    env = {**os.environ, **MTOOLS_ENV}
    return subprocess.run([args[0], "-i", image, *args[1:]], env=env, check=True, capture_output=True, text=True).stdout


# Where the layout keeps what the boot loader reads to choose (restored on the test disk
# after the harness pointed it at the known-good kernel), and how long the test allows.
CHOOSER = {"bls": "efi/loader/loader.conf", "uki": "efi/loader/loader.conf", "grub": "boot/grub/grub.cfg"}


@pytest.mark.parametrize("layout", ["bls", "uki", "grub"])
def test_a_kernel_that_never_boots_falls_back_to_the_known_good_one(
    default_package: Built, trial_package: Built, tmp_path: Path, layout: str
) -> None:
    tries = int(layouts_data()[layout]["tries"])
    root = make_root(tmp_path / "root")
    (root / "efi/EFI").mkdir(parents=True)  # the root's ESP
    good = default_package.metadata["kernel_release"]
    bad = trial_package.metadata["kernel_release"]
    assert bad != good
    run = cli("install", default_package.package, "--root", root, "--layout", layout, "--cmdline", GOOD_CMDLINE)
    assert run.code == 0, run.err
    assert cli("mark-good", "--root", root).code == 0
    run = cli("install", trial_package.package, "--root", root, "--layout", layout, "--cmdline", BAD_CMDLINE)
    assert run.code == 0, run.err
    state = load_state(root)
    assert state.default == bad

    # The boot files as installed; the known-good kernel's initrd also carries the test /init.
    prof = profile("x86_64")
    assert prof.uefi is not None
    token = secrets.token_hex(8)
    work = tmp_path / "work"
    work.mkdir()
    ready = prepare_installed(
        root,
        state.kernels[good],
        prof,
        firmware="uefi",
        cmdline=GOOD_CMDLINE,
        init=init_script(good, (), token),
        modules=(),
        work=work,
    )
    disk = ready.disk
    assert disk is not None
    esp = "." if layout == "grub" else "efi"  # grub: the root's /boot is copied as the ESP's boot/
    mtools(disk, "mcopy", "-o", root / CHOOSER[layout], "::/" + os.path.relpath(CHOOSER[layout], esp))

    vars_copy = work / "vars.fd"
    shutil.copyfile(prof.uefi.vars, vars_copy)
    # The harness's machine and firmware, but a reboot reboots (no -no-reboot) and a panic
    # does not end qemu (no pvpanic): the firmware and boot loader must carry on alone.
    firmware = prof.uefi_argv("tcg", disk, vars_copy)[len(prof.base_argv("tcg")) :]
    machine = [a for a in prof.args if a != "-no-reboot"]
    argv = [prof.binary, "-accel", "tcg", *machine, "-serial", "stdio", *firmware]
    console = tmp_path / "console.log"
    text, milestones = run_console(argv, console)

    # Every boot of the new kernel panicked; then the known-good one reached the marker.
    booted = KERNEL_START.findall(text)
    panics = text.count("Kernel panic - not syncing")
    marker = any(line.startswith(f"{MARKER} {token}") for line in text.splitlines())
    print(f"\n{layout}: " + "; ".join(f"{t:.0f} s {what}" for t, what in milestones))
    assert marker, text[-3000:]
    assert booted == [bad] * tries + [good], text[-3000:]
    assert panics == tries

    # The boot files as the machine left them, back in the root: distkernel sees what happened.
    if layout != "grub":  # the entry (bls) or UKI that carries the counter
        counted = Path(state.kernels[bad].entry if layout == "bls" else state.kernels[bad].uki)
        folder = os.path.relpath(counted.parent, esp)
        names = sorted(os.path.basename(n) for n in mtools(disk, "mdir", "-b", f"::/{folder}").split())
        plain, ext = os.path.splitext(os.path.basename(state.kernels[good].entry or state.kernels[good].uki))
        stem = plain.removesuffix(good)
        assert names == sorted([f"{stem}{good}{ext}", f"{stem}{bad}+0-{tries}{ext}"])
        (root / counted).rename(root / counted.parent / f"{stem}{bad}+0-{tries}{ext}")
    else:
        mtools(disk, "mcopy", "-o", "::/boot/grub/grubenv", root / "boot/grub/grubenv")
    after = load_state(root)
    assert after.default == good
    run = cli("list", "--root", root, "--json")
    assert run.code == 0, run.err
    assert {k["release"]: k["boot"] for k in run.json()["kernels"]} == {good: "", bad: f"BAD: failed {tries} tries"}
    assert run.json()["default"] == good
    assert cli("recover", "--root", root).code == 0
