"""Automatic fallback through systemd-boot's boot counting, booted for real: a root with a
known-good kernel and a newly installed one that cannot boot (its command line names
no init and no root disk: it panics, and `panic=1` reboots the machine). OVMF starts
systemd-boot from the root's ESP, as install left it (entries, counters, loader.conf's
`default`), on a writable disk; nobody acts. systemd-boot takes one try per boot by
renaming the new entry, boots it as long as it has tries left, then the known-good
one, whose test /init prints the run's marker and powers off. The ESP afterwards holds
the new entry as bad (+0-TRIES), and `distkernel list` over it says so and names the
known-good kernel as the default."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from distkernel.target.install import load_state
from distkernel.target.install.target import layouts_data
from distkernel.workflows.boottest.disk import FIRST_LBA, MTOOLS_ENV, SECTOR
from distkernel.workflows.boottest.installed import prepare_installed
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.testinit import MARKER, init_script
from tests.conftest import Built, cli
from tests.target.install.helpers import make_root, with_release

pytestmark = pytest.mark.kernel

GOOD_CMDLINE = "console=ttyS0 panic=1"
# No init in the initramfs and no root disk: the kernel panics, then reboots after 1 s.
BAD_CMDLINE = "console=ttyS0 panic=1 rdinit=/no-such-init root=/dev/no-such-disk"
TIMEOUT_S = 900
KERNEL_START = re.compile(r"Linux version (\S+)")


def mtools(disk: Path, *args: str | Path) -> str:
    image = f"{disk}@@{FIRST_LBA * SECTOR}"
    env = {**os.environ, **MTOOLS_ENV}
    return subprocess.run([args[0], "-i", image, *args[1:]], env=env, check=True, capture_output=True, text=True).stdout


def test_a_kernel_that_never_boots_falls_back_to_the_known_good_one(default_package: Built, tmp_path: Path) -> None:
    tries = int(layouts_data()["bls"]["tries"])
    root = make_root(tmp_path / "root")
    (root / "efi/EFI").mkdir(parents=True)  # the root's ESP
    good = default_package.metadata["kernel_release"]
    bad = f"{good}-trial"
    pkg = default_package.package
    run = cli("install", pkg, "--root", root, "--layout", "bls", "--cmdline", GOOD_CMDLINE)
    assert run.code == 0, run.err
    assert cli("mark-good", "--root", root).code == 0
    trial = with_release(pkg, tmp_path / "trial", bad)
    run = cli("install", trial, "--root", root, "--layout", "bls", "--cmdline", BAD_CMDLINE)
    assert run.code == 0, run.err
    state = load_state(root)
    assert state.default == bad
    assert state.kernels[bad].entry.endswith(f"+{tries}.conf")

    # The ESP as installed; the known-good kernel's initrd also carries the test /init.
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
    # The harness points loader.conf at the kernel it tests: put install's back.
    mtools(disk, "mcopy", "-o", root / "efi/loader/loader.conf", "::/loader/loader.conf")
    assert "default" in mtools(disk, "mtype", "::/loader/loader.conf")

    vars_copy = work / "vars.fd"
    shutil.copyfile(prof.uefi.vars, vars_copy)
    # The harness's machine and firmware, but a reboot reboots (no -no-reboot) and a panic
    # does not end qemu (no pvpanic): the firmware and boot loader must carry on alone.
    firmware = prof.uefi_argv("tcg", disk, vars_copy)[len(prof.base_argv("tcg")) :]
    machine = [a for a in prof.args if a != "-no-reboot"]
    argv = [prof.binary, "-accel", "tcg", *machine, "-serial", "stdio", *firmware]
    console = tmp_path / "console.log"
    start = time.monotonic()
    with open(console, "wb") as log:
        subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
    seconds = time.monotonic() - start
    text = console.read_text(errors="replace")

    # Every boot of the trial kernel panicked; then the known-good one reached the marker.
    booted = KERNEL_START.findall(text)
    panics = text.count("Kernel panic - not syncing")
    marker = next((line for line in text.splitlines() if line.startswith(f"{MARKER} {token}")), None)
    print(f"{len(booted)} kernel starts, {panics} panics, marker after {seconds:.0f} s")
    assert marker is not None, text[-3000:]
    assert panics == tries, text[-3000:]
    assert len(booted) == tries + 1
    # systemd-boot left the trial entry bad on the ESP; the known-good one untouched.
    entries = mtools(disk, "mdir", "-b", "::/loader/entries")
    names = sorted(os.path.basename(n) for n in entries.split())
    token_id = os.path.basename(state.kernels[good].entry).removesuffix(f"-{good}.conf")
    assert names == sorted([f"{token_id}-{good}.conf", f"{token_id}-{bad}+0-{tries}.conf"])

    # The root's ESP as the machine left it: distkernel sees what happened.
    entry = root / state.kernels[bad].entry
    entry.rename(entry.with_name(f"{token_id}-{bad}+0-{tries}.conf"))
    after = load_state(root)
    assert after.default == good
    run = cli("list", "--root", root, "--json")
    assert run.code == 0, run.err
    boot = {k["release"]: k["boot"] for k in run.json()["kernels"]}
    assert boot == {good: "", bad: f"BAD: failed {tries} tries"}
    assert run.json()["default"] == good
    assert cli("recover", "--root", root).code == 0
