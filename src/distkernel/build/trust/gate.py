"""The install-time trust gate: what a root trusts decides which packages it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from distkernel.build.package.reader import VerifiedPackage
from distkernel.core import paths
from distkernel.core.errors import UserError

# The signature code (and the cryptography library under it) is imported only by a root
# that trusts keys: an install into a root without a signature policy does not load it.
if TYPE_CHECKING:
    from distkernel.build.trust.signing import TrustedKey

TRUSTED_DIR = paths.TRUSTED_DIR


def trusted_keys(root: Path) -> list[TrustedKey]:
    """The public keys ROOT/etc/distkernel/trusted.d/*.pub; none means no signature policy."""
    folder = root / TRUSTED_DIR
    pubs = sorted(folder.glob("*.pub")) if folder.is_dir() else []
    if not pubs:
        return []
    from distkernel.build.trust.signing import load_trusted

    return load_trusted(pubs)


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
    from distkernel.build.trust.signing import check_signature

    key, why = check_signature(result.manifest_bytes, result.signature, keys)
    if key is None:
        raise UserError(
            f"{result.path}: {why}; {root / TRUSTED_DIR} trusts {len(keys)} key(s): install a package signed by one "
            "of them (check with `distkernel verify --key PUB`)"
        )
