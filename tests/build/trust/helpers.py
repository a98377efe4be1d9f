"""Small real packages and key sets for the trust and repo tests (no kernel needed)."""

from __future__ import annotations

from pathlib import Path

from distkernel.build.package.format import Metadata
from distkernel.build.package.writer import Member, write_package
from distkernel.build.trust.keys import KeySet, generate_keys
from distkernel.build.trust.signing import signer
from tests.build.package.images import fake_image


def tiny_package(
    dest: Path,
    *,
    key: Path | None = None,
    name: str = "tiny",
    release: str = "6.1.7-tiny",
    variant: str = "",
    arch: str = "x86_64",
) -> Path:
    """A real (small) package: a fake image, config and one module."""
    meta = Metadata(
        name=name,
        variant=variant,
        kernel_release=release,
        version=release.split("-")[0],
        arch=arch,
        recipe_sha256="0" * 64,
        config_sha256="1" * 64,
        source={"origin": "test"},
        toolchain={},
        build_date=1700000000,
        sizes={},
        image="kernel/vmlinuz",
        modules=["hello"],
    )
    members = [
        Member("kernel/vmlinuz", data=fake_image(arch, release, tag=variant.encode())),
        Member("kernel/System.map", data=b"ffffffff81000000 T _text\n"),
        Member("kernel/config", data=b"CONFIG_MODULES=y\n"),
        Member("modules/kernel/hello.ko", data=b"\x7fELF fake module"),
    ]
    return write_package(dest, meta, members, sign=signer(key)[0] if key else None)


def make_keys(folder: Path) -> KeySet:
    return generate_keys(folder)
