"""Secure-boot signing of EFI executables (the kernel's EFI stub image, a UKI) with
sbsign and a db key; sbverify checks them.

Where it happens (docs/signing.md says why):
- build time, on the build server that holds the db key (recipe `[sign] secureboot_key`
  and `secureboot_cert`): `kernel/vmlinuz` is signed before it is packaged, so clients
  boot it under secure boot without ever seeing the key. sbsign stamps the signing time
  into the signature; it runs under faketime pinned at the source's date so the package
  stays byte-reproducible.
- install time, for what only exists on the target: a UKI (kernel + initramfs + command
  line) is assembled there, so it is signed there when the root holds a db key
  (ROOT/etc/distkernel/secureboot/db.key and db.crt)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from distkernel.build.pe import is_pe
from distkernel.core.errors import UserError
from distkernel.core.paths import SECUREBOOT_DIR
from distkernel.core.tools import call, require, run

ROOT_DB_DIR = SECUREBOOT_DIR
ROOT_DB_KEY, ROOT_DB_CRT = "db.key", "db.crt"


def sign_efi(image: Path, out: Path, key: Path, cert: Path, log: Path, *, date: int | None = None) -> Path:
    """sbsign IMAGE into OUT (staged, then renamed). With `date` (SOURCE_DATE_EPOCH) the
    signing time is pinned so the same inputs give the same signature."""
    if not is_pe(image):
        raise UserError(
            f"{image}: not an EFI executable, so it cannot be signed for secure boot; "
            "build the kernel with CONFIG_EFI_STUB=y"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    cmd: list[str | os.PathLike[str]] = ["sbsign", "--key", key, "--cert", cert, "--output", tmp, image]
    env = None
    if date is not None:
        require("faketime")
        stamp = datetime.datetime.fromtimestamp(date, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        cmd = ["faketime", "-f", stamp, *cmd]  # -f: a stopped clock, not one starting there
        env = {**os.environ, "TZ": "UTC"}
    try:
        run(cmd, log=log, env=env, what=f"sbsign {image.name}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def verify_efi(image: Path, cert: Path) -> tuple[bool, str]:
    """sbverify: is IMAGE signed by CERT's key? (and sbverify's last line)"""
    done = call([require("sbverify"), "--cert", cert, image], ok=None)
    lines = done.output.strip().splitlines()
    return done.code == 0, lines[-1] if lines else ""


def root_db_key(root: Path) -> tuple[Path, Path] | None:
    """The db key and certificate a root holds for signing at install time, if any."""
    folder = root / ROOT_DB_DIR
    key, cert = folder / ROOT_DB_KEY, folder / ROOT_DB_CRT
    if key.is_file() and cert.is_file():
        return key, cert
    if key.exists() or cert.exists():
        raise UserError(f"{folder}: holds only one of {ROOT_DB_KEY} and {ROOT_DB_CRT}; secure-boot signing needs both")
    return None


def sign_for_root(root: Path, efi: Path, log: Path) -> bool:
    """Install time: sign EFI (a UKI) in place when ROOT holds a db key; True if signed."""
    found = root_db_key(root)
    if found is None:
        return False
    sign_efi(efi, efi, found[0], found[1], log)
    return True
