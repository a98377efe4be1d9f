"""The install-time trust gate: what a root trusts decides which packages it accepts."""

from __future__ import annotations

from pathlib import Path

from distkernel.package.reader import VerifyResult


def require_trusted(root: Path, result: VerifyResult) -> None:
    """Raise UserError when ROOT trusts keys (/etc/distkernel/trusted.d/) and the
    package's manifest signature is missing or made by none of them."""
