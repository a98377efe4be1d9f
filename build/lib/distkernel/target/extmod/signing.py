"""Signing external modules for kernels that check signatures (CONFIG_MODULE_SIG=y),
with the headers tree's own scripts/sign-file and the root's persistent module key:
ROOT/etc/distkernel/keys/module.pem (RSA key + certificate, as `distkernel key generate`
writes it), certificate also read from module.crt beside it when present."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.trust.keys import MODULE_CRT, MODULE_PEM
from distkernel.core.cache import sha256_file
from distkernel.core.errors import ToolError
from distkernel.core.paths import MODULE_KEYS_DIR
from distkernel.core.tools import run

KEY_DIR = MODULE_KEYS_DIR
SIGNED, UNSIGNED = "signed", "unsigned"


@dataclass(frozen=True)
class ModuleKey:
    key: Path  # PEM with the private key (and usually its certificate)
    cert: Path  # the certificate (PEM or DER)


def root_module_key(root: Path) -> ModuleKey | None:
    folder = root / KEY_DIR
    key = folder / MODULE_PEM
    if not key.is_file():
        return None
    cert = folder / MODULE_CRT
    return ModuleKey(key, cert if cert.is_file() else key)


def signs_modules(config: Mapping[str, str]) -> bool:
    return config.get("CONFIG_MODULE_SIG") == "y"


def sign_hash(config: Mapping[str, str]) -> str:
    return config.get("CONFIG_MODULE_SIG_HASH", '"sha256"').strip('"') or "sha256"


def sign_file(headers: Path, cache: Path, log: Path) -> Path:
    """The headers' scripts/sign-file, else one built (once per source) from the
    sign-file.c they carry: a kernel built without signing ships only the source."""
    tool = headers / "scripts" / "sign-file"
    if os.access(tool, os.X_OK):
        return tool
    source = headers / "scripts" / "sign-file.c"
    if not source.is_file():
        raise ToolError(f"{headers}: neither scripts/sign-file nor scripts/sign-file.c; reinstall the kernel's headers")
    built = cache / f"sign-file-{sha256_file(source)[:16]}"
    if not os.access(built, os.X_OK):
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sign-file.", dir=cache)
        os.close(fd)
        try:
            run(["gcc", "-O2", "-o", tmp, source, "-lcrypto"], log=log, what="gcc sign-file.c")
            os.replace(tmp, built)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return built


def sign_module(tool: Path, config: Mapping[str, str], key: ModuleKey, module: Path, log: Path) -> None:
    """Append a signature to MODULE in place (ToolError with LOG when sign-file fails)."""
    run([tool, sign_hash(config), key.key, key.cert, module], log=log, what=f"sign-file {module.name}")
