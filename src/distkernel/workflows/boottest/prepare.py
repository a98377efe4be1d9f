"""What every attempt of a boot test starts from, built once: the package installed
into a scratch root with the chosen layout, the test initramfs put where the layout
expects the initramfs (a rebuilt UKI for uki), and for UEFI a disk image with the real
boot loader. BIOS + plain starts the installed kernel directly: through PVH when its
ELF has the entry note, else the bzImage through the firmware's Linux loader."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.config.values import read_config
from distkernel.build.package.format import Metadata
from distkernel.build.package.reader import check_package
from distkernel.core.arch import get_arch
from distkernel.core.errors import UserError
from distkernel.target.initramfs import InitramfsSpec, make_initramfs
from distkernel.target.install import install_package
from distkernel.target.install.layouts import KernelFiles
from distkernel.target.install.layouts.grub import config_path, render
from distkernel.target.install.layouts.uki import build_uki
from distkernel.target.install.manage import load_state
from distkernel.target.install.target import Target
from distkernel.workflows.boottest.foreign import populate_root
from distkernel.workflows.boottest.profile import QemuProfile
from distkernel.workflows.boottest.pvh import extract_pvh_kernel
from distkernel.workflows.boottest.uefi import LOADERS, build_disk


@dataclass(frozen=True)
class Prepared:
    boot: str  # how the kernel starts: pvh, bzImage, OVMF + systemd-boot, OVMF + GRUB
    kernel: Path | None  # direct boots
    initrd: Path | None
    cmdline: str
    disk: Path | None  # UEFI boots
    seconds: float
    cached: bool = False  # copied from a preparation kept by content

    def argv(self, prof: QemuProfile, accel: str, vars_copy: Path | None) -> list[str]:
        if self.disk is not None:
            assert vars_copy is not None
            return prof.uefi_argv(accel, self.disk, vars_copy)
        assert self.kernel is not None
        return prof.direct_argv(accel, self.kernel, self.initrd, self.cmdline)


class _Picked:
    """A member the package reader streams: kept when it is one of the wanted files."""

    def __init__(self, path: Path | None) -> None:
        self.out = open(path, "wb") if path is not None else None  # noqa: SIM115 - closed by the reader

    def write(self, data: memoryview) -> None:
        if self.out is not None:
            self.out.write(data)

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


class _Pick:
    def __init__(self, names: dict[str, Path]) -> None:
        self.names = names

    def file(self, name: str, mode: int) -> _Picked:
        return _Picked(self.names.get(name))

    def symlink(self, name: str, target: str) -> None:
        pass

    def directory(self, name: str) -> None:
        pass


def _extract(package: Path, names: dict[str, Path]) -> None:
    """The named payload files of the package, in one pass of the package reader."""
    check_package(package, _Pick(names))
    if missing := [name for name, path in names.items() if not path.exists()]:
        raise UserError(f"{package}: has no {', '.join(missing)}; rebuild the package")


def _rebuild_uki(
    package: Path, meta: Metadata, target: Target, uki: Path, initrd: Path, cmdline: str, work: Path
) -> None:
    """The layout's UKI made again with the test initramfs (same stub, cmdline, name)."""
    kernel = work / "kernel"
    kernel.mkdir()
    files = KernelFiles(
        release=meta.kernel_release,
        image=kernel / "vmlinuz",
        initrd=initrd,
        system_map=kernel / "System.map",
        config=kernel / "config",
        cmdline=cmdline,
        arch=meta.arch,
    )
    # One pass over the stream, not one each: the kernel files come after the headers tree.
    _extract(package, {f"kernel/{p.name}": p for p in (files.image, files.system_map, files.config)})
    built = work / "uki-work"
    built.mkdir()
    build_uki(files, target.os_release(), built / "uki.efi", built, target.root)
    shutil.copyfile(built / "uki.efi", uki)


def test_initramfs(
    release: str, modules_dir: Path, config: Path, modules: tuple[str, ...], init: str, root: Path, work: Path
) -> Path:
    """The builtin initramfs with the test init and MODULES (checked before: all there)."""
    spec = InitramfsSpec(release, modules_dir, kernel_config=config, modules=modules, cmdline_root=False, init=init)
    initrd = make_initramfs("builtin", spec, work / "test-initrd.img", root=root).path
    assert initrd is not None
    return initrd


def direct_boot(
    prof: QemuProfile, image: Path, config: Path, initrd: Path, cmdline: str, work: Path, start: float
) -> Prepared:
    """The kernel started by qemu itself: through PVH when its ELF has the note."""
    pvh = None
    if prof.pvh and read_config(config).get("CONFIG_PVH") == "y":
        pvh = extract_pvh_kernel(image, work / "vmlinux")
    name = "pvh" if pvh else Path(get_arch(prof.arch).image).name  # bzImage, Image, vmlinux
    return Prepared(name, pvh or image, initrd, cmdline, None, time.monotonic() - start)


def prepare(
    package: Path,
    meta: Metadata,
    prof: QemuProfile,
    *,
    firmware: str,
    layout: str,
    cmdline: str,
    init: str,
    modules: tuple[str, ...],
    work: Path,
) -> Prepared:
    start = time.monotonic()
    root = work / "root"
    if firmware == "uefi":
        (root / "efi" / "EFI").mkdir(parents=True)  # the root's ESP: bls and uki go there
    root.mkdir(exist_ok=True)
    populate_root(root, get_arch(meta.arch), prof.root_packages)  # another arch's busybox and systemd-boot
    inst = install_package(package, root, layout=layout, initramfs="builtin", cmdline=cmdline)
    config = inst.headers_dir / ".config"
    initrd = test_initramfs(meta.kernel_release, inst.modules_dir, config, modules, init, root, work)
    if firmware == "bios":
        return direct_boot(prof, inst.image, config, initrd, cmdline, work, start)
    assert prof.uefi is not None
    target = Target.probe(root)
    if layout == "uki":
        assert inst.uki is not None
        _rebuild_uki(package, meta, target, inst.uki, initrd, cmdline, work)
    else:
        assert inst.initrd is not None
        shutil.copyfile(initrd, inst.initrd)
    if layout == "grub":  # the one kernel starts at once: a test never waits out a menu
        target.path(config_path(target)).write_bytes(render(target, load_state(root), timeout=0))
    disk = build_disk(layout, root, target.esp, target.boot, prof.uefi, work)
    return Prepared(f"{prof.uefi.name} + {LOADERS[layout]}", None, None, cmdline, disk, time.monotonic() - start)
