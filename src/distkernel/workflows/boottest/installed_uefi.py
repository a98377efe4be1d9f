"""An installed kernel booted through its layout's real boot loader under UEFI, without
changing the root: the ESP image is a copy of the root's boot files with three changes,
each only where the test needs it: the entry's initrd is the root's initramfs followed by
the test initramfs, its command line is the test's (the serial console), and it is the
one the loader starts (loader.conf `default`, or a grub.cfg naming only this kernel)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.target.install.layouts import KernelFiles
from distkernel.target.install.layouts.bls import loader_conf
from distkernel.target.install.layouts.grub import render
from distkernel.target.install.layouts.uki import build_uki
from distkernel.target.install.state import KernelRecord, State
from distkernel.target.install.target import Target
from distkernel.workflows.boottest.disk import esp_disk
from distkernel.workflows.boottest.profile import Uefi
from distkernel.workflows.boottest.uefi import LOADERS, esp_tree

OPTIONS_RE = re.compile(r"^options\s.*$", re.MULTILINE)


def check_layout(k: KernelRecord, root: Path) -> None:
    if k.layout not in LOADERS:
        raise UserError(
            f"--firmware uefi: kernel {k.release} in {root} uses the {k.layout} layout, which no UEFI boot "
            "loader reads; test it with --firmware bios"
        )


def uefi_disk(root: Path, k: KernelRecord, uefi: Uefi, initrd: Path, cmdline: str, work: Path) -> Path:
    target = Target.probe(root)
    tree = work / "esp"
    log = work / "disk.log"
    esp_tree(k.layout, root, target.esp, target.boot, uefi, tree, log=log)
    if k.layout == "uki":
        files = KernelFiles(k.release, root / k.modules_dir / "vmlinuz", initrd, Path(), Path(), cmdline, k.arch)
        built = work / "uki-work"
        built.mkdir()
        build_uki(files, target.os_release(), built / "uki.efi", built, target.root)
        shutil.copyfile(built / "uki.efi", tree / os.path.relpath(k.uki, target.esp))
        _set_default(tree, os.path.basename(k.uki))
    elif k.layout == "bls":
        _bls_entry(tree, target, k, initrd, cmdline)
    else:
        _grub(tree, target, k, initrd, cmdline)
    return esp_disk(tree, work / "disk.img", log=log)


def _set_default(tree: Path, ident: str) -> None:
    conf = tree / "loader/loader.conf"
    current = conf.read_text() if conf.exists() else ""
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_bytes(loader_conf(str(conf), current, ident))


def _bls_entry(tree: Path, target: Target, k: KernelRecord, initrd: Path, cmdline: str) -> None:
    entry = tree / os.path.relpath(k.entry, target.esp)
    text = entry.read_text()
    text = (
        OPTIONS_RE.sub(f"options    {cmdline}", text) if OPTIONS_RE.search(text) else text + f"options    {cmdline}\n"
    )
    if k.initrd:
        shutil.copyfile(initrd, tree / os.path.relpath(k.initrd, target.esp))
    else:  # installed without an initramfs: the test's goes beside the kernel
        rel = os.path.join(os.path.dirname(os.path.relpath(k.image, target.esp)), "initrd")
        shutil.copyfile(initrd, tree / rel)
        text += f"initrd     /{rel}\n"
    entry.write_text(text)
    _set_default(tree, os.path.basename(k.entry))


def _grub(tree: Path, target: Target, k: KernelRecord, initrd: Path, cmdline: str) -> None:
    """The root's boot folder is copied under boot/; the grub.cfg names this kernel only."""
    rel = k.initrd or f"{target.boot}/initramfs-{k.release}.img"
    shutil.copyfile(initrd, tree / rel)
    one = dataclasses.replace(k, cmdline=cmdline, initrd=rel)
    (tree / target.boot / "grub").mkdir(parents=True, exist_ok=True)
    (tree / target.boot / "grub/grub.cfg").write_bytes(render(target, State({k.release: one}, k.release), timeout=0))
