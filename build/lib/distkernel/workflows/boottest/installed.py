"""A kernel as installed in a root, booted for a test without changing the root: its
initrd is the root's own initramfs (as installed; for a UKI, its .initrd section)
followed by the test initramfs, made from the root's modules folder (external modules
included) so that --module can load any of them. The kernel unpacks both archives in
order: the test /init replaces the root's. BIOS starts the installed kernel directly;
UEFI through the layout's boot loader (installed_uefi.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from distkernel.build.config.values import parse_config
from distkernel.core.errors import UserError
from distkernel.core.tools import run
from distkernel.target.install import load_state
from distkernel.target.install.state import KernelRecord
from distkernel.target.install.target import Target
from distkernel.workflows.boottest.installed_uefi import check_layout, uefi_disk
from distkernel.workflows.boottest.preflight import check_kernel
from distkernel.workflows.boottest.prepare import Prepared, direct_boot, test_initramfs
from distkernel.workflows.boottest.profile import QemuProfile
from distkernel.workflows.boottest.uefi import LOADERS

# The kernel finds an uncompressed cpio after another archive only at a 4-byte boundary
# (init/initramfs.c skips zero bytes between archives): pad to it.
ALIGN = 4


def installed_kernel(root: Path, release: str | None) -> KernelRecord:
    target = Target.probe(root)  # a missing root: the one error every command gives
    state = load_state(target.root)
    if not state.kernels:
        raise UserError(
            f"--root {target.root}: no kernel installed by distkernel there; "
            f"install one first (distkernel install PKG --root {target.root})"
        )
    wanted = release or state.default
    k = state.kernels.get(wanted or "")
    if k is None:
        have = ", ".join(sorted(state.kernels))
        what = release or "(no default kernel)"
        raise UserError(f"{what}: not a kernel distkernel installed in {target.root}; installed: {have}")
    return k


def check_installed(root: Path, k: KernelRecord, firmware: str) -> None:
    """What can be known before booting the installed kernel K with FIRMWARE."""
    config = root / k.headers_dir / ".config"
    if not config.is_file():
        raise UserError(f"{config}: missing, the installed kernel {k.release} is damaged; reinstall it")
    check_kernel(f"kernel {k.release} in {root}", parse_config(config.read_text(errors="replace")), firmware)
    if firmware == "uefi":
        check_layout(k, root)


def _root_initrd(root: Path, k: KernelRecord, work: Path) -> bytes:
    """The initramfs the root boots this kernel with, as installed."""
    if k.uki:
        out = work / "uki-initrd"
        run(
            ["objcopy", "-O", "binary", "--only-section=.initrd", root / k.uki, out],
            log=work / "objcopy.log",
            what="objcopy (the UKI's initrd)",
        )
        return out.read_bytes() if out.exists() else b""
    return (root / k.initrd).read_bytes() if k.initrd else b""


def prepare_installed(
    root: Path,
    k: KernelRecord,
    prof: QemuProfile,
    *,
    firmware: str,
    cmdline: str,
    init: str,
    modules: tuple[str, ...],
    work: Path,
) -> Prepared:
    start = time.monotonic()
    root = root.resolve()
    config = root / k.headers_dir / ".config"
    # The UKI cannot be started directly: the kernel kept beside the modules is the same one.
    image = root / k.modules_dir / "vmlinuz" if k.uki else root / k.image
    ours = test_initramfs(k.release, root / k.modules_dir, config, modules, init, root, work)
    theirs = _root_initrd(root, k, work)
    both = work / "initrd-and-test.img"
    with open(both, "wb") as f:
        f.write(theirs)
        f.write(b"\0" * (-len(theirs) % ALIGN))
        with open(ours, "rb") as src:
            shutil.copyfileobj(src, f)
    os.unlink(ours)
    if firmware == "uefi":
        assert prof.uefi is not None
        disk = uefi_disk(root, k, prof.uefi, both, cmdline, work)
        return Prepared(f"OVMF + {LOADERS[k.layout]}", None, None, cmdline, disk, time.monotonic() - start)
    return direct_boot(prof, image, config, both, cmdline, work, start)
