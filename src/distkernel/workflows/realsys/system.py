"""Make an unpacked Debian root a bootable system: who it is (machine id, fstab, kernel
command line), its network, the report unit, a kernel installed by distkernel (which
also places its mark-good unit) with the bls layout and systemd-boot installed by the
root's own bootctl, or with the grub layout and GRUB by the root's own grub-install;
then its disk."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from importlib import resources
from pathlib import Path

from distkernel.build.trust.gate import TRUSTED_DIR
from distkernel.core.tools import run
from distkernel.workflows.realsys.disk import Identity, system_disk
from distkernel.workflows.realsys.root import chroot_env, unpack_root

ESP_DIR = "boot/efi"
PLAN = "etc/realsys/plan"
# A fixed machine id: entry paths ({token}) are the same at every run.
MACHINE_ID = uuid.uuid5(uuid.NAMESPACE_URL, "distkernel:realsys:machine").hex
UNIT = "realsys-report.service"
LAYOUTS = ("bls", "grub")


def _data(name: str) -> bytes:
    return resources.files("distkernel.workflows.data").joinpath(f"realsys/{name}").read_bytes()


def _write(root: Path, rel: str, data: bytes | str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def cmdline(ident: Identity, console: str) -> str:
    """panic=-1: a panic reboots at once (into the boot loader: a kernel on trial then
    spends a try)."""
    return f"root=UUID={ident.root_uuid} rw console={console} panic=-1"


def configure(
    root: Path,
    ident: Identity,
    *,
    console: str,
    plan: str | None,
    log: Path,
    layout: str = "bls",
) -> None:
    """Identity, mounts, network, the report unit and PLAN (a script run at each boot
    with the running release as $1; its output goes to the console)."""
    _write(root, "etc/machine-id", MACHINE_ID + "\n", 0o444)
    _write(root, "etc/hostname", "realsys\n")
    _write(
        root,
        "etc/fstab",
        f"UUID={ident.root_uuid} / ext4 rw,errors=remount-ro 0 0\n"
        # As Debian's installer writes it, not nofail: the ESP is then mounted before
        # local-fs.target, which systemd-bless-boot.service waits for (with nofail it ran
        # before the mount, found no ESP and failed, leaving the boot counted). systemd's
        # own wait for the device (90 s): with 30 s, udev's coldplug under TCG on a loaded
        # machine missed it and the boot ended in emergency mode.
        f"UUID={ident.esp_uuid} /{ESP_DIR} vfat umask=0077 0 1\n",
    )
    _write(root, "etc/kernel/cmdline", cmdline(ident, console) + "\n")
    # Every kernel in LAYOUT, in the guest too: bootctl's empty EFI/Linux would otherwise
    # make detection choose uki for the next one.
    _write(root, "etc/kernel/install.conf", f"layout={layout}\n")
    _write(root, "etc/systemd/network/80-guest.network", _data("guest.network"))
    _write(root, f"etc/systemd/system/{UNIT}", _data(UNIT))
    _write(root, "usr/local/sbin/realsys-report", _data("realsys-report"), 0o755)
    if plan is not None:
        _write(root, PLAN, plan, 0o755)
    (root / ESP_DIR).mkdir(parents=True, exist_ok=True)
    env = chroot_env()
    run(
        ["chroot", root, "systemctl", "enable", UNIT, "systemd-networkd.service"],
        log=log,
        env=env,
        what="systemctl",
    )
    # A getty on the serial console would hang the console up under the report.
    run(["chroot", root, "systemctl", "mask", f"serial-getty@{console}.service"], log=log, env=env, what="systemctl")


# bootctl wants the ESP to be the root of a file system (and /proc for its renames): in a
# private mount namespace that ends with the command, a tmpfs stands in for the ESP and
# what bootctl wrote is copied out into the root's ESP folder.
BOOTCTL_SH = """set -e
mkdir -p "$2"
mount -t tmpfs tmpfs "$1/$3"
mount -t proc proc "$1/proc"
chroot "$1" bootctl install --esp-path="/$3" --no-variables
cp -a "$1/$3/." "$2/"
"""


def bootctl_install(root: Path, *, log: Path) -> None:
    """systemd-boot onto the root's ESP folder by the root's own bootctl, with no EFI
    variables set (the firmware starts the removable-media path bootctl also writes)
    and the partition checks relaxed (SYSTEMD_RELAX_ESP_CHECKS): there is no disk yet."""
    out = root.parent / f".{root.name}-bootctl"
    shutil.rmtree(out, ignore_errors=True)
    run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", BOOTCTL_SH, "sh", root, out, ESP_DIR],
        log=log,
        env={**chroot_env(), "SYSTEMD_RELAX_ESP_CHECKS": "1"},
        what="bootctl install",
    )
    shutil.copytree(out, root / ESP_DIR, dirs_exist_ok=True)
    shutil.rmtree(out)


# grub-install finds the device under /boot/grub and the ESP from the mount table and
# reads their file systems (the root's UUID goes into the EFI image's search, the ESP must
# be FAT); with no disk yet and no loop devices, in a private mount namespace a tmpfs
# whose source names a stand-in image (an empty ext4 with the root's UUID, an empty FAT)
# is the root a chroot of the root's /usr and /etc sees, and another the ESP. What
# grub-install wrote is copied out into the root's /boot/grub and ESP folder. The stand-in
# is a whole file system, not a partition: GRUB's GPT module goes into the image by name
# (found from the device on a real disk; without it GRUB finds no root: "no such device").
GRUB_SH = """set -e
root=$1 top=$2 out=$3 esp=$4
mount -t tmpfs /standin-root.img "$top"
mount -t tmpfs /standin-esp.img "$out"
cp "$top.ext4" "$top/standin-root.img"
cp "$top.vfat" "$top/standin-esp.img"
for d in usr etc dev proc tmp boot/grub "$esp"; do mkdir -p "$top/$d"; done
for l in bin sbin lib lib64; do [ -L "$root/$l" ] && cp -P "$root/$l" "$top/$l"; done
mount --bind "$root/usr" "$top/usr"
mount --bind "$root/etc" "$top/etc"
mount --rbind /dev "$top/dev"
mount -t proc proc "$top/proc"
mount --bind "$out" "$top/$esp"
chroot "$top" grub-install --target=x86_64-efi --efi-directory="/$esp" --boot-directory=/boot \
    --removable --no-nvram --modules=part_gpt
mkdir -p "$root/boot/grub" "$out.copy"
cp -a "$top/boot/grub/." "$root/boot/grub/"
cp -a "$out/." "$out.copy/"
"""


def grub_install(root: Path, ident: Identity, *, log: Path) -> None:
    """GRUB (the root's grub-install, x86_64-efi) onto the root's /boot/grub and the
    removable-media path of its ESP folder, no EFI variables (see GRUB_SH)."""
    top = root.parent / f".{root.name}-grub"
    out = root.parent / f".{root.name}-grub-esp"
    for p in (top, out, Path(f"{out}.copy")):
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir()
    try:
        run(["mkfs.ext4", "-q", "-F", "-U", ident.root_uuid, "-L", "root", f"{top}.ext4", "4M"], log=log,
            what="mkfs.ext4 (stand-in)")  # fmt: skip
        run(["mkfs.vfat", "-C", "-i", ident.esp_serial, f"{top}.vfat", "2048"], log=log, what="mkfs.vfat (stand-in)")
        run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", GRUB_SH, "sh", root, top, out, ESP_DIR],
            log=log,
            env=chroot_env(),
            what="grub-install",
        )
        shutil.copytree(f"{out}.copy", root / ESP_DIR, dirs_exist_ok=True)
    finally:
        for p in (top, out, Path(f"{out}.copy"), Path(f"{top}.ext4"), Path(f"{top}.vfat")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def divert_grub_mkconfig(root: Path, *, log: Path, undo: bool = False) -> None:
    """Set the root's grub-mkconfig aside the way dpkg keeps (dpkg-divert), or put it back
    (UNDO). distkernel runs the root's grub-mkconfig when there is one, chrooted here,
    where grub-probe finds no device: while the first kernel is installed from outside,
    distkernel writes its own grub.cfg instead. Put back, the guest's first commit (the
    first boot's mark-good) hands grub.cfg to grub-mkconfig and its /etc/grub.d script."""
    action = ["--remove"] if undo else ["--divert", "/usr/sbin/grub-mkconfig.distrib", "--add"]
    run(
        ["chroot", root, "dpkg-divert", "--local", "--rename", *action, "/usr/sbin/grub-mkconfig"],
        log=log,
        env=chroot_env(),
        what="dpkg-divert (grub-mkconfig)",
    )


def install_kernel(root: Path, package: Path, *, layout: str = "bls", log: Path) -> None:
    """The first kernel, with its headers tree: the system builds external modules (it
    has gcc and make for them), and the package file stays on this machine."""
    run(
        [sys.executable, "-m", "distkernel", "install", package, "--root", root, "--layout", layout,
         "--initramfs", "builtin", "--with-headers"],
        log=log,
        what="distkernel install",
    )  # fmt: skip


def make_disk(root: Path, ident: Identity, disk: Path, *, log: Path) -> Path:
    """The ESP's files move out of the root (its folder stays, as the mount point)."""
    esp = root.parent / f"{root.name}-esp"
    shutil.rmtree(esp, ignore_errors=True)
    os.replace(root / ESP_DIR, esp)
    (root / ESP_DIR).mkdir()
    try:
        return system_disk(esp, root, disk, ident, log=log)
    finally:
        shutil.rmtree(esp, ignore_errors=True)


def system_image(
    work: Path,
    package: Path,
    *,
    plan: str,
    trusted: Path,
    files: dict[str, Path],
    console: str = "ttyS0",
    layout: str = "bls",
) -> Path:
    """The whole system in WORK/disk.img: the Debian root with distkernel, PLAN, the
    binhost key TRUSTED, FILES (root-relative path -> file or folder to copy there),
    its boot loader (LAYOUT bls: systemd-boot; grub: GRUB) and PACKAGE installed with
    LAYOUT."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: one of {LAYOUTS}")
    log = work / "system.log"
    ident = Identity.fixed(work.name)
    root = unpack_root(work / "root", log)
    configure(root, ident, console=console, plan=plan, log=log, layout=layout)
    for rel, src in files.items():
        if src.is_dir():
            shutil.copytree(src, root / rel)
        else:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / rel)
    (root / TRUSTED_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trusted, root / TRUSTED_DIR / "binhost.pub")
    if layout == "grub":
        divert_grub_mkconfig(root, log=log)
        grub_install(root, ident, log=log)
    else:
        bootctl_install(root, log=log)
    install_kernel(root, package, layout=layout, log=log)
    if layout == "grub":
        divert_grub_mkconfig(root, log=log, undo=True)
    disk = make_disk(root, ident, work / "disk.img", log=log)
    shutil.rmtree(root)
    return disk
