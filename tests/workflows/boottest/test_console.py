"""Classification of recorded console text (excerpts of real boots of the default
recipe and of the kernel's own messages), and line splitting of arbitrary chunks."""

from __future__ import annotations

from distkernel.workflows.boottest.console import (
    INIT,
    NO_MARKER,
    OOPS,
    PANIC,
    PASS,
    QEMU,
    TIMEOUT,
    LineSplitter,
    Verdict,
    classify,
)

TOKEN = "0f3c9a1b2d4e5f60"

BOOT = """\
Linux version 6.1.192-distkernel (distkernel@distkernel) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP
Command line: console=ttyS0 panic=-1
Freeing unused kernel image (rodata/data gap) memory: 1400K
Run /init as init process
"""

PASSED = (
    BOOT
    + f"""\
test_module: Hello, world
DISTKERNEL-BOOT-OK {TOKEN}
ACPI: PM: Preparing to enter system sleep state S5
reboot: Power down
"""
)

VFS_PANIC = """\
Linux version 6.1.192-distkernel (distkernel@distkernel) #1 SMP
Freeing initrd memory: 992K
List of all partitions:
No filesystem could mount root, tried:

Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
"""

OOPSED = (
    BOOT
    + """\
BUG: kernel NULL pointer dereference, address: 0000000000000000
#PF: supervisor read access in kernel mode
Oops: 0000 [#1] SMP NOPTI
CPU: 0 PID: 1 Comm: init Not tainted 6.1.192-distkernel #1
"""
)

WARNED = (
    BOOT
    + """\
[    1.234567] ------------[ cut here ]------------
[    1.234568] WARNING: CPU: 0 PID: 1 at kernel/module/main.c:123 load_module+0x12/0x40
"""
    + f"DISTKERNEL-BOOT-OK {TOKEN}\n"
)

INIT_FAILED = (
    BOOT
    + """\
test_module: Hello, world
DISTKERNEL-CHECK-FAILED modprobe no_such_module: modprobe: module no_such_module not found in modules.dep
reboot: Power down
"""
)


def verdict(text: str, *, timed_out: bool = False, status: int | None = 0, err: str = "") -> Verdict:
    return classify(text.splitlines(), TOKEN, timed_out=timed_out, qemu_status=status, qemu_err=err)


def test_marker_is_pass() -> None:
    assert verdict(PASSED) == Verdict(PASS, "")


def test_only_this_runs_marker_counts() -> None:
    other = PASSED.replace(TOKEN, "another-run-token")
    assert verdict(other).outcome == NO_MARKER
    assert verdict(PASSED.replace(f"DISTKERNEL-BOOT-OK {TOKEN}", f"echo DISTKERNEL-BOOT-OK {TOKEN}")).outcome != PASS


def test_panic_with_its_line_even_when_qemu_exits_0() -> None:
    v = verdict(VFS_PANIC, status=0)
    assert v == Verdict(PANIC, "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)")


def test_panic_after_the_marker_is_the_power_off_not_the_test() -> None:
    text = PASSED + "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n"
    assert verdict(text).outcome == PASS


def test_oops_bug_and_warn_fail_even_with_the_marker() -> None:
    assert verdict(OOPSED) == Verdict(OOPS, "BUG: kernel NULL pointer dereference, address: 0000000000000000")
    v = verdict(WARNED)
    assert v.outcome == OOPS
    assert v.detail.startswith("WARNING: CPU: 0 PID: 1 at kernel/module/main.c:123")


def test_init_failure_names_the_check() -> None:
    v = verdict(INIT_FAILED)
    assert v.outcome == INIT
    assert v.detail.startswith("modprobe no_such_module:")


def test_timeout_shows_the_last_line() -> None:
    v = verdict(BOOT, timed_out=True, status=None)
    assert v == Verdict(TIMEOUT, "last console line: Run /init as init process")
    assert verdict("", timed_out=True, status=None) == Verdict(TIMEOUT, "no console output")
    grub = "\x1b[0m\x1b[37m\x1b[40merror: file `/boot/vmlinuz-6.1' not found.\n\x1b[0mPress any key to continue...\n"
    assert verdict(grub, timed_out=True, status=None).detail == "last console line: Press any key to continue..."


def test_qemu_error() -> None:
    err = "qemu-system-x86_64: -kernel /nope: could not open: No such file or directory\n"
    assert verdict("", status=1, err=err) == Verdict(QEMU, err.strip())


def test_stopped_without_marker() -> None:
    firmware_only = 'BdsDxe: loading Boot0001 "UEFI Misc Device"\nReset System\n'
    v = verdict(firmware_only)
    assert v.outcome == NO_MARKER and "never started" in v.detail
    assert "without printing" in verdict(BOOT).detail


def test_lines_are_split_across_chunks() -> None:
    s = LineSplitter()
    assert s.feed(b"Linux ver") == []
    assert s.feed(b"sion 6.1\r\nRun /in") == ["Linux version 6.1"]
    assert s.feed(b"it\r\n\xffpartial") == ["Run /init"]
    assert s.flush() == ["\ufffdpartial"]
    assert s.flush() == []


def test_boot_phases_from_console_lines() -> None:
    from distkernel.workflows.boottest.console import phase_after

    phase = "firmware"
    seen = []
    for line in [
        'BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)',
        'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)',
        "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path",
        "[    0.000000] Linux version 6.1.192 (gcc 12)",
        "[    0.912000] Run /init as init process",
        "Welcome to GRUB!",  # a later line never moves a phase back
    ]:
        phase = phase_after(phase, line)
        seen.append(phase)
    assert seen == ["loader", "loader", "kernel", "kernel", "init", "init"]
    assert phase_after("firmware", "Linux version 6.1.0") == "kernel"  # a direct boot has no loader


def test_an_initramfs_that_does_not_unpack_is_named() -> None:
    lines = [
        "Initramfs unpacking failed: invalid magic at start of compressed archive",
        "Kernel panic - not syncing: No working init found.",
    ]
    v = classify(lines, "t", timed_out=False, qemu_status=1, qemu_err="")
    assert (v.outcome, v.detail) == ("init failure", lines[0])
