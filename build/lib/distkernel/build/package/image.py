"""The kernel image a package carries, identified by its own header and version string
while it streams (nothing but its first 66 KiB is kept): an x86 bzImage by its boot
sector and setup header (the release from the header's kernel_version pointer), an
arm64 Image by its header magic, a vmlinux by its ELF e_machine (the release from the
"Linux version X (" banner). Which arch boots which format is data:
build/data/kernel-images.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from distkernel.build.package.format import IMAGE, METADATA, Metadata
from distkernel.build.package.schema import SchemaError

HEAD = 0x10000 + 0x200 + 0x200  # the setup header's u16 kernel_version pointer, plus the string
BANNER_RE = re.compile(rb"Linux version ([\x21-\x7e]{1,64}) \(")
CARRY = 96  # a banner cut by a chunk boundary is found in the next chunk
FORMAT_NAMES = {"bzImage": "an x86 bzImage", "arm64-image": "an arm64 Image", "elf": "an ELF vmlinux"}
XLF_KERNEL_64 = 1


@dataclass(frozen=True)
class ImageKind:
    format: str
    elf_machine: int


@cache
def image_kinds() -> dict[str, ImageKind]:
    raw = tomllib.loads(resources.files("distkernel.build.data").joinpath("kernel-images.toml").read_text())
    return {arch: ImageKind(**kind) for arch, kind in raw.items()}


@dataclass(frozen=True)
class ImageInfo:
    format: str  # a key of FORMAT_NAMES
    arch: str
    release: str


def _u16(data: bytes | bytearray, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def identify(head: bytes | bytearray) -> tuple[str, str]:
    """(format, arch) of an image from its first bytes; ("", "") for no kernel image,
    arch "" for a kernel of no known arch."""
    kinds = image_kinds()
    if len(head) >= 0x240 and head[0x1FE:0x200] == b"\x55\xaa" and head[0x202:0x206] == b"HdrS":
        is64 = _u16(head, 0x206) >= 0x20C and _u16(head, 0x236) & XLF_KERNEL_64
        return "bzImage", next((a for a, k in kinds.items() if k.format == "bzImage" and is64), "")
    if len(head) >= 64 and head[56:60] == b"ARM\x64":
        return "arm64-image", next((a for a, k in kinds.items() if k.format == "arm64-image"), "")
    if len(head) >= 20 and head[:4] == b"\x7fELF":
        machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
        lsb64 = head[4] == 2 and head[5] == 1
        return "elf", next((a for a, k in kinds.items() if k.elf_machine == machine and lsb64), "")
    return "", ""


class ImageCheck:
    """Fed the image's bytes in order; `finish` judges them against the metadata."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.size = 0
        self.carry = b""
        self.banner: str | None = None

    def feed(self, data: memoryview | bytes) -> None:
        self.size += len(data)
        if len(self.head) < HEAD:
            self.head += data[: HEAD - len(self.head)]
        if self.banner is None:
            window = self.carry + bytes(data)
            if found := BANNER_RE.search(window):
                self.banner = found.group(1).decode("ascii")
            self.carry = window[-CARRY:]

    def _bzimage_release(self) -> str | None:
        head = self.head
        setup = ((head[0x1F1] or 4) + 1) * 512
        protected = int.from_bytes(head[0x1F4:0x1F8], "little") * 16
        if self.size < setup + protected:
            raise SchemaError(f"{IMAGE}: a bzImage cut short ({self.size} of {setup + protected} bytes)")
        pointer = _u16(head, 0x20E)
        at = pointer + 0x200
        if not pointer or at >= min(setup, len(head)):
            return None
        text = bytes(head[at : at + 0x200]).split(b"\0", 1)[0].split(b" ", 1)[0]
        return text.decode("ascii", "replace") if text else None

    def finish(self, meta: Metadata) -> ImageInfo:
        fmt, arch = identify(self.head)
        if not fmt:
            raise SchemaError(f"{IMAGE}: not a kernel image ({self.size} bytes, no bzImage, arm64 Image or ELF header)")
        expected = image_kinds()[meta.arch].format
        if arch != meta.arch or fmt != expected:
            what = f"{FORMAT_NAMES[fmt]} for {arch or 'no known arch'}"
            raise SchemaError(
                f"{IMAGE}: is {what}, but {METADATA} says arch {meta.arch} (which boots {FORMAT_NAMES[expected]})"
            )
        release = self._bzimage_release() if fmt == "bzImage" else self.banner
        if release is None:
            raise SchemaError(f"{IMAGE}: no kernel version string in the image")
        if release != meta.kernel_release:
            raise SchemaError(
                f"{IMAGE}: the kernel is release {release[:64]!r}, but {METADATA} says {meta.kernel_release!r}"
            )
        return ImageInfo(fmt, arch, release)
