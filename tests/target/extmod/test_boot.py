"""The booted kernel loads an --initramfs external module from the initramfs that
`distkernel install` made: the installed image is booted under qemu with only its /init
replaced (a second cpio appended, which the kernel unpacks over the first) by the boot
harness's test init, which modprobes the module and prints this run's marker.

The kernel reads an appended archive only at a 4-byte boundary (the zero padding between
archives is skipped in steps of 4): `with_init` pads the installed image first, whatever
its compressed length (which changes with every module built at install time)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from distkernel.target.initramfs.cpio import Archive
from distkernel.target.install import load_state
from distkernel.workflows.boottest.accel import choose
from distkernel.workflows.boottest.console import is_marker
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.qemu import run_qemu
from distkernel.workflows.boottest.testinit import init_script


def with_init(image: bytes, init: str) -> bytes:
    """IMAGE followed by a cpio holding /init, at the 4-byte boundary the kernel needs."""
    overlay = Archive()
    overlay.file("init", init.encode(), 0o755)
    return image + b"\0" * (-len(image) % 4) + overlay.to_bytes()


def test_an_appended_init_starts_at_a_four_byte_boundary_whatever_the_image_length() -> None:
    for length in range(8):
        data = with_init(b"\x28\xb5\x2f\xfd" + b"x" * length, "#!/bin/sh\n")
        start = data.index(b"070701")
        assert start % 4 == 0 and data[4 + length : start] == b"\0" * (start - 4 - length)


@pytest.mark.kernel
def test_the_booted_kernel_modprobes_the_module_from_its_initramfs(
    installed: tuple[Path, str],
    tmp_path: Path,
) -> None:
    root, release = installed
    record = load_state(root).kernels[release]
    token = secrets.token_hex(8)
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(with_init((root / record.initrd).read_bytes(), init_script(release, ("dk_plain",), token)))
    prof = profile("x86_64")
    argv = prof.direct_argv(choose(prof).name, root / record.image, initrd, prof.kernel_cmdline())
    run = run_qemu(argv, token=token, timeout=180, console_log=tmp_path / "console.log")
    assert any(is_marker(line, token) for line in run.lines), "\n".join(run.lines[-30:])
    assert any("dk_plain: external module loaded" in line for line in run.lines)
