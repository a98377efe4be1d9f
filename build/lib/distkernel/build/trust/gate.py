"""The install-time trust gate: what a root trusts decides which packages it accepts."""

from __future__ import annotations

from pathlib import Path

from distkernel.build.package.reader import VerifiedPackage
from distkernel.build.trust.signing import TrustedKey, check_signature, load_trusted
from distkernel.core import paths
from distkernel.core.errors import UserError

TRUSTED_DIR = paths.TRUSTED_DIR


def trusted_keys(root: Path) -> list[TrustedKey]:
    """The public keys ROOT/etc/distkernel/trusted.d/*.pub; none means no signature policy."""
    folder = root / TRUSTED_DIR
    return load_trusted(sorted(folder.glob("*.pub"))) if folder.is_dir() else []


def require_trusted(root: Path, result: VerifiedPackage) -> None:
    """Raise UserError when ROOT trusts keys (/etc/distkernel/trusted.d/) and the
    package's manifest signature is missing or made by none of them. A manifest
    mismatch is always refused."""
    if not result.ok or result.manifest is None:
        raise UserError(
            f"{result.path}: the package does not match its manifest (corrupt or altered); not installing it",
            details=result.problems[:20],
        )
    keys = trusted_keys(root)
    if not keys:
        return
    key, why = check_signature(result.manifest.to_bytes(), result.signature, keys)
    if key is None:
        raise UserError(
            f"{result.path}: {why}; {root / TRUSTED_DIR} trusts {len(keys)} key(s): install a package signed by one "
            "of them (check with `distkernel verify --key PUB`)"
        )
