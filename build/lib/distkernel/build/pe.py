"""PE/COFF (EFI executable) facts distkernel needs, read from the bytes: is a file one
(secure-boot signing refuses anything else), where a stub's sections end (a UKI's
sections go after them), and the header timestamp and checksum (kept reproducible)."""

from __future__ import annotations

import struct
from pathlib import Path

from distkernel.core.errors import UserError


def is_pe(path: Path) -> bool:
    """An EFI executable: the MZ stub pointing at a PE header."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] != b"MZ" or len(head) < 0x40:
        return False
    offset = int.from_bytes(head[0x3C:0x40], "little")
    return head[offset : offset + 4] == b"PE\0\0"


def pe_layout(stub: Path, fix: str) -> tuple[int, int, int]:
    """(image base, section alignment, first free RVA) of a PE32+ file; FIX ends the
    error when it is not one."""
    data = stub.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0] if len(data) >= 0x40 else 0
    if data[:2] != b"MZ" or data[pe : pe + 4] != b"PE\0\0":
        raise UserError(f"{stub}: not a PE file; {fix}")
    nsections, opt_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    opt = pe + 24
    if struct.unpack_from("<H", data, opt)[0] != 0x20B:
        raise UserError(f"{stub}: not a PE32+ (64-bit) stub; {fix}")
    image_base, align = struct.unpack_from("<QI", data, opt + 24)
    end = 0
    for i in range(nsections):
        vsize, vaddr = struct.unpack_from("<II", data, opt + opt_size + 40 * i + 8)
        end = max(end, vaddr + vsize)
    return image_base, align, end


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def copy_timestamp(stub: Path, out: Path) -> None:
    """objcopy stamps PE files with the time of day; the stub's own stamp keeps the same
    inputs giving the same output. The PE checksum covers the stamp: recompute it."""
    src = stub.read_bytes()
    data = bytearray(out.read_bytes())
    pe, pe_out = struct.unpack_from("<I", src, 0x3C)[0], struct.unpack_from("<I", data, 0x3C)[0]
    data[pe_out + 8 : pe_out + 12] = src[pe + 8 : pe + 12]
    at = pe_out + 24 + 64  # CheckSum in the optional header
    struct.pack_into("<I", data, at, 0)
    struct.pack_into("<I", data, at, pe_checksum(bytes(data)))
    out.write_bytes(bytes(data))


def pe_checksum(data: bytes) -> int:
    """The PE image checksum (imagehlp's CheckSumMappedFile), with the field zeroed: the
    16-bit words summed with end-around carry, i.e. their sum modulo 0xFFFF, which is
    the whole file as one little-endian number modulo 0xFFFF (2**16 = 1 there)."""
    padded = data + b"\0" * (len(data) % 2)
    folded = int.from_bytes(padded, "little") % 0xFFFF
    if folded == 0 and any(padded):
        folded = 0xFFFF
    return folded + len(data)
