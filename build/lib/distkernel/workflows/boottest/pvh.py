"""The ELF kernel inside an x86 bzImage, for a PVH direct boot.

A bzImage carries the whole (symbol-stripped) vmlinux ELF, compressed, at the setup
header's payload_offset; the ELF keeps its notes, so when it has the Xen PVH entry note
qemu can start it in 32-bit protected mode directly, skipping the 16-bit setup code and
the decompressor (about a second under TCG). Nothing extra needs shipping."""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from pathlib import Path

import zstandard

XEN_ELFNOTE_PHYS32_ENTRY = 18
ELF_MAGIC = b"\x7fELF"
PT_NOTE = 4


def _decompress(data: bytes) -> bytes | None:
    """The payload's compression, by magic; None for ones Python cannot read (lz4, lzo)."""
    if data[:2] == b"\x1f\x8b":
        return zlib.decompressobj(wbits=31).decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if data[:3] == b"\x5d\x00\x00":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
    if data[:3] == b"BZh":
        return bz2.BZ2Decompressor().decompress(data)
    return None


def payload_elf(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage (boot protocol >= 2.08), or None."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack_from("<H", bzimage, 0x206)
    if version < 0x208:
        return None
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    try:
        elf = _decompress(bzimage[start : start + length])
    except (zlib.error, zstandard.ZstdError, lzma.LZMAError, OSError, EOFError):
        return None
    return elf if elf and elf[:4] == ELF_MAGIC else None


def has_pvh_note(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has the XEN_ELFNOTE_PHYS32_ENTRY note."""
    if elf[4] != 2 or elf[5] != 1:
        return False
    phoff, phentsize, phnum = struct.unpack_from("<Q", elf, 0x20)[0], *struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != PT_NOTE:
            continue
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def extract_pvh_kernel(image: Path, out: Path) -> Path | None:
    """Write the PVH-bootable ELF inside `image` to `out`; None when it has none."""
    elf = payload_elf(image.read_bytes())
    if elf is None or not has_pvh_note(elf):
        return None
    out.write_bytes(elf)
    return out
