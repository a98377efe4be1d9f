"""A whole-system disk image as a plain file: a GPT (sgdisk) with an EFI system partition
(mkfs.vfat --offset, files copied in by mtools) and an ext4 root (mkfs.ext4 -d from a
folder, at its offset). No loop devices and no mounts."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.tools import run
from distkernel.workflows.boottest.disk import MTOOLS_ENV, SECTOR

FIRST_LBA = 2048
ESP_MIB = 128  # two kernels with their initramfs and a boot loader, with room to spare
ROOT_SLACK_MIB = 768  # a second kernel, its headers, module builds, the journal


@dataclass(frozen=True)
class Identity:
    """What the root's fstab and kernel command line name the partitions by."""

    root_uuid: str
    esp_serial: str  # the FAT volume id as 8 hex digits; fstab writes it XXXX-XXXX

    @property
    def esp_uuid(self) -> str:
        return f"{self.esp_serial[:4]}-{self.esp_serial[4:]}".upper()

    @classmethod
    def fixed(cls, name: str) -> Identity:
        """Identities derived from NAME: the image's bytes depend only on its contents."""
        u = uuid.uuid5(uuid.NAMESPACE_URL, f"distkernel:realsys:{name}")
        return cls(str(u), u.hex[:8])


def _tree_mib(tree: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                continue
    return total // (1 << 20) + 1


def system_disk(esp: Path, root: Path, disk: Path, ident: Identity, *, log: Path) -> Path:
    """DISK holding ESP's files on its EFI partition and ROOT's tree as its ext4 root."""
    esp_sectors = ESP_MIB * (1 << 20) // SECTOR
    root_mib = _tree_mib(root) * 5 // 4 + ROOT_SLACK_MIB
    root_start = FIRST_LBA + esp_sectors
    root_sectors = root_mib * (1 << 20) // SECTOR
    total = (root_start + root_sectors + 34) * SECTOR  # the backup GPT after the root
    tmp = disk.with_name(f".{disk.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.truncate(total)
        run(
            ["sgdisk", "-a", "2048",
             "-n", f"1:{FIRST_LBA}:{root_start - 1}", "-t", "1:ef00", "-c", "1:ESP",
             "-n", f"2:{root_start}:{root_start + root_sectors - 1}", "-t", "2:8304", "-c", "2:root",
             tmp],
            log=log,
            what="sgdisk (GPT)",
        )  # fmt: skip
        run(
            ["mkfs.vfat", "-F", "32", "-s", "1", "-i", ident.esp_serial, f"--offset={FIRST_LBA}", "-n", "ESP",
             tmp, str(ESP_MIB * 1024)],
            log=log,
            what="mkfs.vfat (ESP)",
        )  # fmt: skip
        tops = sorted(esp.iterdir())
        if tops:
            image = f"{tmp}@@{FIRST_LBA * SECTOR}"
            env = {**os.environ, **MTOOLS_ENV}
            run(["mcopy", "-i", image, "-s", "-Q", *tops, "::/"], log=log, env=env, what="mcopy (ESP)")
        run(
            ["mkfs.ext4", "-q", "-F", "-U", ident.root_uuid, "-L", "root", "-d", root,
             "-E", f"offset={root_start * SECTOR}", tmp, f"{root_mib}M"],
            log=log,
            what="mkfs.ext4 -d (root)",
        )  # fmt: skip
        os.replace(tmp, disk)
    finally:
        tmp.unlink(missing_ok=True)
    return disk
