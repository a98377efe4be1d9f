"""The smallest stand-in kernel images the package reader takes, for packages made by
tests without a kernel build: the header fields it reads, nothing else."""

from __future__ import annotations

from distkernel.build.package.image import image_kinds

SIZE = 8192


def fake_bzimage(release: str, tag: bytes = b"") -> bytes:
    """An x86_64 bzImage: boot sector signature, setup header (protocol 2.15, 64-bit
    entry) whose kernel_version pointer names RELEASE. Starts with "MZ" like a kernel
    with an EFI stub."""
    setup_sects = 3
    setup = (setup_sects + 1) * 512
    image = bytearray(SIZE)
    image[0:2] = b"MZ"
    image[0x1F1] = setup_sects
    image[0x1F4:0x1F8] = ((SIZE - setup) // 16).to_bytes(4, "little")
    image[0x1FE:0x200] = b"\x55\xaa"
    image[0x202:0x206] = b"HdrS"
    image[0x206:0x208] = (0x020F).to_bytes(2, "little")
    image[0x20E:0x210] = (0x400 - 0x200).to_bytes(2, "little")
    image[0x236:0x238] = (1).to_bytes(2, "little")  # XLF_KERNEL_64
    version = f"{release} (test@distkernel) #1\0".encode()
    image[0x400 : 0x400 + len(version)] = version
    image[0x600 : 0x600 + len(tag)] = tag
    return bytes(image)


def _banner(image: bytearray, release: str, tag: bytes) -> bytes:
    banner = f"Linux version {release} (test@distkernel) #1\n\0".encode()
    image[0x1000 : 0x1000 + len(banner)] = banner
    image[0x1800 : 0x1800 + len(tag)] = tag
    return bytes(image)


def fake_arm64_image(release: str, tag: bytes = b"") -> bytes:
    image = bytearray(SIZE)
    image[56:60] = b"ARM\x64"
    return _banner(image, release, tag)


def fake_elf(machine: int, release: str, tag: bytes = b"") -> bytes:
    image = bytearray(SIZE)
    image[0:7] = b"\x7fELF\x02\x01\x01"  # 64-bit, little-endian, version 1
    image[18:20] = machine.to_bytes(2, "little")
    return _banner(image, release, tag)


def fake_image(arch: str, release: str, tag: bytes = b"") -> bytes:
    """A stand-in for ARCH's boot image (build/data/kernel-images.toml)."""
    kind = image_kinds()[arch]
    if kind.format == "bzImage":
        return fake_bzimage(release, tag)
    if kind.format == "arm64-image":
        return fake_arm64_image(release, tag)
    return fake_elf(kind.elf_machine, release, tag)
