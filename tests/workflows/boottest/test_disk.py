"""The GPT + ESP image: a valid table (both copies, CRCs) and a FAT filesystem at the
partition's offset that mtools reads back."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

from distkernel.workflows.boottest.disk import ESP_TYPE, FIRST_LBA, SECTOR, esp_disk


def _header(disk: bytes, lba: int) -> tuple[int, ...]:
    raw = disk[lba * SECTOR : lba * SECTOR + 92]
    fields = struct.unpack("<8sIIIIQQQQ16sQIII", raw)
    crc = zlib.crc32(raw[:16] + b"\0\0\0\0" + raw[20:])
    assert fields[0] == b"EFI PART" and fields[3] == crc
    return fields


def test_esp_disk(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "EFI" / "BOOT").mkdir(parents=True)
    (tree / "EFI" / "BOOT" / "BOOTX64.EFI").write_bytes(b"MZ" + os.urandom(300_000))
    (tree / "loader" / "entries").mkdir(parents=True)
    (tree / "loader" / "entries" / "a-6.1.conf").write_text("title a\n")
    disk = esp_disk(tree, tmp_path / "disk.img", log=tmp_path / "log")
    data = disk.read_bytes()
    total = len(data) // SECTOR
    assert data[510:512] == b"\x55\xaa" and data[446 + 4] == 0xEE  # protective MBR
    primary, backup = _header(data, 1), _header(data, total - 1)
    assert (primary[5], primary[6]) == (1, total - 1) and (backup[5], backup[6]) == (total - 1, 1)
    entries = data[primary[10] * SECTOR : primary[10] * SECTOR + 128 * 128]
    assert zlib.crc32(entries) == primary[13] == backup[13]
    assert entries == data[backup[10] * SECTOR : backup[10] * SECTOR + 128 * 128]
    type_guid, _, first, last = struct.unpack_from("<16s16sQQ", entries)
    assert type_guid == ESP_TYPE.bytes_le and first == FIRST_LBA and last == primary[8]
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    image = f"{disk}@@{FIRST_LBA * SECTOR}"
    got = subprocess.run(["mtype", "-i", image, "::/loader/entries/a-6.1.conf"], capture_output=True, env=env)
    assert got.stdout == b"title a\n", got.stderr
    listing = subprocess.run(["mdir", "-i", image, "-b", "::/EFI/BOOT"], capture_output=True, text=True, env=env)
    assert "BOOTX64.EFI" in listing.stdout
