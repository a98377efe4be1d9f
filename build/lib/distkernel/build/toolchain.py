"""Versions of the tools whose output ends up in the kernel: part of the package's
metadata and of the build cache key."""

from __future__ import annotations

from distkernel.core.arch import Arch
from distkernel.core.tools import call

# Variables a user may set that change what Kbuild produces.
BUILD_ENV = ("KCFLAGS", "KAFLAGS", "KCPPFLAGS", "KBUILD_CFLAGS", "LLVM", "CC", "LD")


def _first_line(*argv: str) -> str:
    out = call(argv, ok=None).output
    return out.splitlines()[0].strip() if out else ""


def toolchain_versions(arch: Arch) -> dict[str, str]:
    prefix = arch.cross_compile
    return {
        "gcc": _first_line(f"{prefix}gcc", "--version"),
        "binutils": _first_line(f"{prefix}ld", "--version"),
        "make": _first_line("make", "--version"),
    }
