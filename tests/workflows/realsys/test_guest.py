"""The real system's qemu line: a machine that reboots, on a panic too."""

from __future__ import annotations

from pathlib import Path

from distkernel.workflows.realsys.guest import qemu_argv


def test_the_guest_reboots_after_a_panic_instead_of_ending_qemu(tmp_path: Path) -> None:
    argv = qemu_argv(tmp_path / "disk.img", tmp_path / "vars.fd", memory_mib=1024, binhost_port=None)
    assert "-no-reboot" not in argv
    assert not any("pvpanic" in a or "panic=" in a for a in argv), argv
    assert argv[argv.index("-m") + 1] == "1024"
    assert argv[argv.index("-machine") + 1] == "q35"
