"""Detached Ed25519 signatures over canonical bytes (a package manifest, a repo index):
a small JSON document naming the algorithm and the signer's key id. Ed25519 is
deterministic, so a signed package stays reproducible."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from distkernel.build.package.format import canonical_json
from distkernel.build.trust.keys import load_package_private, load_public, public_fingerprint

ALGORITHM = "ed25519"


@dataclass(frozen=True)
class TrustedKey:
    fingerprint: str
    key: ed25519.Ed25519PublicKey
    origin: Path


def signer(private_key_path: Path) -> tuple[Callable[[bytes], bytes], str]:
    """A function signing bytes with the key, and the key's fingerprint."""
    key = load_package_private(private_key_path)
    fingerprint = public_fingerprint(key.public_key())

    def sign(data: bytes) -> bytes:
        return canonical_json(
            {"algorithm": ALGORITHM, "key": fingerprint, "signature": base64.b64encode(key.sign(data)).decode()}
        )

    return sign, fingerprint


def load_trusted(paths: Iterable[Path]) -> list[TrustedKey]:
    out = []
    for path in paths:
        key = load_public(path)
        out.append(TrustedKey(public_fingerprint(key), key, path))
    return out


def check_signature(data: bytes, signature: bytes | None, trusted: list[TrustedKey]) -> tuple[TrustedKey | None, str]:
    """The trusted key that made `signature` over `data`, else None and why not."""
    if signature is None:
        return None, "not signed"
    try:
        doc = json.loads(signature)
        algorithm, key_id, raw = doc["algorithm"], doc["key"], base64.b64decode(doc["signature"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None, "signature is unreadable"
    if algorithm != ALGORITHM:
        return None, f"unknown signature algorithm {algorithm!r}"
    for candidate in trusted:
        if candidate.fingerprint == key_id:
            try:
                candidate.key.verify(raw, data)
            except InvalidSignature:
                return None, f"bad signature by key {key_id[:16]} (the signed content was altered)"
            return candidate, ""
    return None, f"signed by key {str(key_id)[:16]}, which is not trusted"
