"""Module signing with a persistent key: the recipe's `[sign] modules = "PATH"` (a PEM
holding an RSA key and its X.509 certificate) becomes CONFIG_MODULE_SIG_KEY, and Kbuild
signs every module at modules_install with scripts/sign-file.

The .config names the key by a fixed relative name, a symlink at the top of the build
folder: no path of the build server enters the shipped .config, packages built from
keys in different folders are identical, and the key file itself is never copied
(neither into the build folder nor into the package)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from distkernel.build.recipe import Recipe
from distkernel.build.trust.keys import cert_fingerprint, cert_matches, load_certificates, load_rsa_private
from distkernel.core.errors import UserError

KEY_LINK = "distkernel-module-key.pem"
SIGNING_X509 = "certs/signing_key.x509"  # what Kbuild extracts from the key and builds in


@dataclass(frozen=True)
class ModuleSigner:
    """Who signs the modules, as `modinfo` and the package's metadata show it."""

    subject: str  # the certificate's common name: modinfo's `signer:`
    serial: str  # the certificate's serial, hex: sign-file names the key by it (modinfo's `sig_key:`)
    fingerprint: str  # sha256 of the certificate

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def module_signer(path: Path) -> ModuleSigner:
    """Check that PATH holds an RSA key and a certificate for it; describe the signer."""
    key = load_rsa_private(path, "the module signing key")
    cert = load_certificates(path, "the module signing certificate")[0]
    if not cert_matches(key, cert):
        raise UserError(
            f"{path}: the certificate is not for the private key in the same file; put the matching pair in it"
        )
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise UserError(
                f"{path}: the certificate's extended key usage lacks codeSigning; "
                "make one with `distkernel key generate`"
            )
    except x509.ExtensionNotFound:
        pass
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else cert.subject.rfc4514_string()
    return ModuleSigner(subject, format(cert.serial_number, "x"), cert_fingerprint(cert))


def link_module_key(recipe: Recipe, build_dir: Path) -> None:
    """Point KEY_LINK in the build folder at the recipe's key (or remove a stale link)."""
    link = build_dir / KEY_LINK
    if recipe.sign.modules is None:
        link.unlink(missing_ok=True)
        return
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{KEY_LINK}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(recipe.sign.modules)
    os.replace(tmp, link)
    # Kbuild re-extracts the certificate it embeds only when the key file is newer than
    # it: a switch to another (older) key would leave the old one, and sign-file would
    # then refuse every module. Drop it when it is not this key's.
    embedded = build_dir / SIGNING_X509
    cert = load_certificates(recipe.sign.modules, "the module signing certificate")[0]
    if embedded.exists() and embedded.read_bytes() != cert.public_bytes(serialization.Encoding.DER):
        embedded.unlink()
