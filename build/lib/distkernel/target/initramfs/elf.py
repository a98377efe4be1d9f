"""Just enough ELF reading for the initramfs: is a binary static (no PT_INTERP), which
machine is it for, and a module's .modinfo strings (what `modinfo -F` reads)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_INTERP = 3
EM_NAMES = {3: "i386", 62: "x86_64", 40: "arm", 183: "arm64", 243: "riscv64", 21: "ppc64", 22: "s390"}


@dataclass(frozen=True)
class Elf:
    data: bytes
    is64: bool
    endian: str  # "<" or ">"

    @classmethod
    def parse(cls, data: bytes) -> Elf | None:
        if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
            return None
        return cls(data, data[4] == 2, "<" if data[5] == 1 else ">")

    def _unpack(self, fmt32: str, fmt64: str, offset: int) -> tuple[int, ...]:
        return struct.unpack_from(self.endian + (fmt64 if self.is64 else fmt32), self.data, offset)

    @property
    def machine(self) -> int:
        return int(struct.unpack_from(self.endian + "H", self.data, 18)[0])

    def program_types(self) -> list[int]:
        phoff = self._unpack("28xI", "32xQ", 0)[0]
        phentsize, phnum = self._unpack("42xHH", "54xHH", 0)
        return [int(struct.unpack_from(self.endian + "I", self.data, phoff + i * phentsize)[0]) for i in range(phnum)]

    @property
    def is_static(self) -> bool:
        return PT_INTERP not in self.program_types()

    def section(self, wanted: str) -> bytes | None:
        shoff = self._unpack("32xI", "40xQ", 0)[0]
        shentsize, shnum, shstrndx = self._unpack("46xHHH", "58xHHH", 0)
        if not shoff or shstrndx >= shnum:
            return None
        headers = []
        for i in range(shnum):
            at = shoff + i * shentsize
            headers.append(self._unpack("I12xII", "I20xQQ", at))
        strtab_off = headers[shstrndx][1]
        key = wanted.encode() + b"\0"
        for name, offset, size in headers:
            if self.data[strtab_off + name : strtab_off + name + len(key)] == key:
                return self.data[offset : offset + size]
        return None


def modinfo(data: bytes, field: str) -> list[str]:
    """Values of one .modinfo field (e.g. "firmware") of a module's (decompressed) bytes."""
    elf = Elf.parse(data)
    try:
        section = elf.section(".modinfo") if elf else None
    except struct.error:  # section headers beyond the file: nothing to read
        return []
    if not section:
        return []
    prefix = field.encode() + b"="
    return [s[len(prefix) :].decode(errors="replace") for s in section.split(b"\0") if s.startswith(prefix)]
