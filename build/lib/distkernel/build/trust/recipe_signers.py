"""The build side of a recipe's `[sign]` table, as the pipeline uses it: key
fingerprints for the package cache key, the manifest signer, the secure-boot signed
image, and what the package's metadata records about its signers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from distkernel.build.recipe import Recipe
from distkernel.build.trust.keys import cert_fingerprint, cert_matches, load_certificates, load_rsa_private
from distkernel.build.trust.modsign import module_signer
from distkernel.build.trust.secureboot import sign_efi
from distkernel.build.trust.signing import signer
from distkernel.core.errors import UserError


def _secureboot(recipe: Recipe) -> dict[str, str] | None:
    key_path, cert_path = recipe.sign.secureboot_key, recipe.sign.secureboot_cert
    if key_path is None or cert_path is None:
        return None
    key = load_rsa_private(key_path, "the secure-boot db key")
    cert = load_certificates(cert_path, "the secure-boot db certificate")[0]
    if not cert_matches(key, cert):
        raise UserError(
            f"{recipe.line_of('sign', 'secureboot_cert')}: sign.secureboot_cert is not for secureboot_key; "
            "name the certificate made with that key (db.crt beside db.key)"
        )
    return {"subject": cert.subject.rfc4514_string(), "fingerprint": cert_fingerprint(cert)}


def signers(recipe: Recipe) -> dict[str, Any]:
    """Who signs what, by public fingerprints only: recorded in the package's metadata
    and hashed into its cache key (a new key is a new package)."""
    out: dict[str, Any] = {}
    if recipe.sign.package is not None:
        out["package"] = signer(recipe.sign.package)[1]
    if recipe.sign.modules is not None:
        out["modules"] = module_signer(recipe.sign.modules).to_json()
    if (secureboot := _secureboot(recipe)) is not None:
        out["secureboot"] = secureboot
    return out


def manifest_signer(recipe: Recipe) -> Callable[[bytes], bytes] | None:
    return signer(recipe.sign.package)[0] if recipe.sign.package is not None else None


def boot_image(recipe: Recipe, image: Path, work: Path, date: int, log: Path) -> Path:
    """The image to package: signed for secure boot when the recipe names a db key."""
    key, cert = recipe.sign.secureboot_key, recipe.sign.secureboot_cert
    if key is None or cert is None:
        return image
    return sign_efi(image, work / "vmlinuz.signed", key, cert, log, date=date)
