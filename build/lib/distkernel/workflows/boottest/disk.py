"""A GPT disk image holding one EFI system partition (vfat), built as a plain file:
the partition table written here, the filesystem by mkfs.vfat --offset, files copied
in by mtools. No loop devices, no mounts, no root needed."""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from pathlib import Path

from distkernel.core.tools import run

SECTOR = 512
FIRST_LBA = 2048  # 1 MiB alignment, as partitioning tools do
ENTRIES = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR  # 32
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
# Fixed identities: the image's bytes depend only on its contents.
DISK_GUID = uuid.uuid5(uuid.NAMESPACE_URL, "distkernel:boottest:disk")
PART_GUID = uuid.uuid5(uuid.NAMESPACE_URL, "distkernel:boottest:esp")
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def _tree_bytes(tree: Path) -> int:
    return sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())


def _header(current: int, backup: int, last_usable: int, entries_lba: int, entries_crc: int) -> bytes:
    def pack(crc: int) -> bytes:
        return struct.pack(
            "<8sIIIIQQQQ16sQIII",
            b"EFI PART",
            0x00010000,
            92,
            crc,
            0,
            current,
            backup,
            ENTRY_SECTORS + 2,
            last_usable,
            DISK_GUID.bytes_le,
            entries_lba,
            ENTRIES,
            ENTRY_SIZE,
            entries_crc,
        )

    return pack(zlib.crc32(pack(0))).ljust(SECTOR, b"\0")


def _protective_mbr(total: int) -> bytes:
    mbr = bytearray(SECTOR)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(total - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def write_gpt(disk: Path, part_sectors: int) -> int:
    """Create `disk` (sparse) with a GPT whose one ESP starts at FIRST_LBA; its size in sectors."""
    total = FIRST_LBA + part_sectors + ENTRY_SECTORS + 1
    last_usable = total - ENTRY_SECTORS - 2
    name = "EFI System Partition".encode("utf-16-le").ljust(72, b"\0")
    entry = struct.pack("<16s16sQQQ72s", ESP_TYPE.bytes_le, PART_GUID.bytes_le, FIRST_LBA, last_usable, 0, name)
    table = entry.ljust(ENTRIES * ENTRY_SIZE, b"\0")
    crc = zlib.crc32(table)
    with open(disk, "wb") as f:
        f.truncate(total * SECTOR)
        f.write(_protective_mbr(total))
        f.write(_header(1, total - 1, last_usable, 2, crc))
        f.write(table)
        f.seek((total - 1 - ENTRY_SECTORS) * SECTOR)
        f.write(table)
        f.write(_header(total - 1, 1, last_usable, total - 1 - ENTRY_SECTORS, crc))
    return total


def esp_disk(tree: Path, disk: Path, *, log: Path) -> Path:
    """A GPT disk whose ESP holds a copy of `tree` (its top level is the ESP's root)."""
    kib = max(32 * 1024, (_tree_bytes(tree) * 5 // 4) // 1024 + 8 * 1024)
    part_sectors = kib * 1024 // SECTOR
    tmp = disk.with_name(f".{disk.name}.tmp-{os.getpid()}")
    try:
        write_gpt(tmp, part_sectors)
        run(
            ["mkfs.vfat", "--invariant", f"--offset={FIRST_LBA}", "-n", "ESP", tmp, str(kib)],
            log=log,
            what="mkfs.vfat (ESP image)",
        )
        image = f"{tmp}@@{FIRST_LBA * SECTOR}"
        env = {**os.environ, **MTOOLS_ENV}
        tops = sorted(tree.iterdir())
        if tops:
            run(["mcopy", "-i", image, "-s", "-Q", *tops, "::/"], log=log, env=env, what="mcopy (ESP image)")
        os.replace(tmp, disk)
    finally:
        tmp.unlink(missing_ok=True)
    return disk
