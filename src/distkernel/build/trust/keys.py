"""Key material: `distkernel key generate` and the loaders every signer and verifier
uses. Private files are created 0600 from the first byte; public files are 0644."""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from distkernel.core.cache import atomic_write_bytes, fsync_dir
from distkernel.core.errors import UserError

# X.509 is imported by the functions that make or read certificates (key generation,
# module and secure-boot signing), not by every verifier: it is most of cryptography's
# import time, which an install pays at each start.
if TYPE_CHECKING:
    from cryptography import x509

# The names `key generate` writes, and what a recipe's [sign] table points at.
PACKAGE_KEY, PACKAGE_PUB = "package.key", "package.pub"  # Ed25519: manifests and repo indexes
MODULE_PEM, MODULE_CRT = "module.pem", "module.crt"  # RSA key + X.509 cert (CONFIG_MODULE_SIG_KEY)
DB_KEY, DB_CRT = "db.key", "db.crt"  # secure-boot db key and certificate (sbsign)
PRIVATE = (PACKAGE_KEY, MODULE_PEM, DB_KEY)
ALL = (PACKAGE_KEY, PACKAGE_PUB, MODULE_PEM, MODULE_CRT, DB_KEY, DB_CRT)
CERT_YEARS = 30


@dataclass(frozen=True)
class KeySet:
    folder: Path
    package_fingerprint: str
    module_fingerprint: str
    db_fingerprint: str

    def path(self, name: str) -> Path:
        return self.folder / name


def _write_private(path: Path, data: bytes) -> None:
    """Never readable by others, not even while the temporary file is being written."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pem_private(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(key: rsa.RSAPrivateKey, common_name: str, code_signing: bool) -> x509.Certificate:
    """Self-signed, like the kernel's certs/default_x509.genkey: not a CA, digital
    signature only, codeSigning for module keys, subject and authority key ids."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "distkernel"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if code_signing:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(key, hashes.SHA256())


def generate_keys(out: Path, *, name: str = "distkernel") -> KeySet:
    """Write a fresh key set into `out`; refuses to overwrite an existing one."""
    out = out.resolve()
    existing = [n for n in ALL if (out / n).exists()]
    if existing:
        raise UserError(f"{out}: already holds {', '.join(existing)}; keys are never overwritten: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    package = ed25519.Ed25519PrivateKey.generate()
    # RSA, not ECDSA: PKCS#1 v1.5 signatures are deterministic, so modules signed twice
    # with the same key are byte-identical (and the package reproducible).
    module = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    module_cert = _certificate(module, f"{name} module signing key", code_signing=True)
    db = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    db_cert = _certificate(db, f"{name} secure boot db", code_signing=False)
    pem_cert = serialization.Encoding.PEM
    _write_private(out / PACKAGE_KEY, _pem_private(package))
    _write_private(out / MODULE_PEM, _pem_private(module) + module_cert.public_bytes(pem_cert))
    _write_private(out / DB_KEY, _pem_private(db))
    public = package.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write_bytes(out / PACKAGE_PUB, public)
    atomic_write_bytes(out / MODULE_CRT, module_cert.public_bytes(pem_cert))
    atomic_write_bytes(out / DB_CRT, db_cert.public_bytes(pem_cert))
    fsync_dir(out)
    return KeySet(
        out, public_fingerprint(package.public_key()), cert_fingerprint(module_cert), cert_fingerprint(db_cert)
    )


def public_fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    """sha256 of the raw public key: the key id written next to every signature."""
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def cert_fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def cert_matches(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bool:
    """Whether CERT certifies KEY's public half."""
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read {what}: {e.strerror}") from None


def load_package_private(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, "the package signing key"), password=None)
    except (ValueError, TypeError) as e:
        raise UserError(
            f"{path}: not an unencrypted PEM private key ({e}); make one with `distkernel key generate`"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UserError(f"{path}: package signing keys are Ed25519; make one with `distkernel key generate`")
    return key


def load_public(path: Path) -> ed25519.Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path, "the public key"))
    except (ValueError, TypeError):
        raise UserError(
            f"{path}: not a PEM public key; use the package.pub written by `distkernel key generate`"
        ) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UserError(f"{path}: not an Ed25519 public key; use the package.pub written by `distkernel key generate`")
    return key


def load_certificates(path: Path, what: str) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(_read(path, what))
    except ValueError:
        raise UserError(
            f"{path}: holds no PEM certificate ({what}); use the files `distkernel key generate` writes"
        ) from None


def load_rsa_private(path: Path, what: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, what), password=None)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: no unencrypted PEM private key for {what} ({e})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UserError(f"{path}: {what} must be an RSA key (deterministic signatures keep builds reproducible)")
    return key
