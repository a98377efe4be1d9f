"""`distkernel sign PKG --key KEY`: sign a package built without a key (or sign it
again with another key) so that binhost clients accept it. Only the signature member
changes: every other member is copied as it is, in the same order, with the same tar
headers and the writer's compression settings, so the result is byte for byte what a
build with `[sign] package = KEY` writes. The result is verified before it replaces
the package."""

from __future__ import annotations

import copy
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import zstandard

from distkernel.build.package.format import MANIFEST, METADATA, SIGNATURE
from distkernel.build.package.reader import check_package
from distkernel.build.package.writer import ZSTD_WORKERS, compression_params
from distkernel.build.trust.keys import load_package_private, public_fingerprint
from distkernel.build.trust.signing import TrustedKey, check_signature, signer
from distkernel.core import cache
from distkernel.core.errors import UserError

MAX_MANIFEST = 64 << 20  # read whole to be signed: a generous bound for ~100k files


def _rewrite(src: Path, dst: Path, sign: Callable[[bytes], bytes]) -> None:
    """Copy SRC to DST member by member (streamed, never a whole payload file in
    memory): the manifest followed by a new signature, any old signature left out."""
    params = compression_params(ZSTD_WORKERS)
    check_package(src)  # judged whole by the one reader before a byte of it is copied
    with (
        open(src, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f), mode="r|") as tar_in,
        open(dst, "wb") as raw,
    ):
        with (
            zstandard.ZstdCompressor(compression_params=params).stream_writer(raw, closefd=False) as zw,
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.GNU_FORMAT) as tar_out,
        ):
            for index, info in enumerate(tar_in):
                expected = {0: METADATA, 1: MANIFEST}.get(index)
                if expected is not None and (info.name != expected or not info.isfile()):
                    raise UserError(f"{src}: not a distkernel package ({METADATA} and {MANIFEST} must come first)")
                if index == 2 and info.name == SIGNATURE:
                    continue
                data = tar_in.extractfile(info) if info.isfile() else None
                if index == 1 and info.name == MANIFEST and data is not None:
                    if info.size > MAX_MANIFEST:
                        raise UserError(f"{src}: {MANIFEST} is larger than {MAX_MANIFEST} bytes; not signing it")
                    manifest = data.read()
                    signature = sign(manifest)
                    sig_info = copy.copy(info)  # the writer gives both the same header fields
                    sig_info.name, sig_info.size = SIGNATURE, len(signature)
                    tar_out.addfile(info, io.BytesIO(manifest))
                    tar_out.addfile(sig_info, io.BytesIO(signature))
                    continue
                tar_out.addfile(info, data)
        raw.flush()
        os.fsync(raw.fileno())


def sign_package(package: Path, key: Path) -> str:
    """Sign PACKAGE in place with the Ed25519 private KEY; the key's fingerprint."""
    sign, fingerprint = signer(key)
    public = load_package_private(key).public_key()
    trusted = [TrustedKey(public_fingerprint(public), public, key)]
    if not package.is_file():
        raise UserError(f"{package}: no such package file")
    tmp = package.with_name(f".{package.name}.sign-{os.getpid()}")
    try:
        try:
            _rewrite(package, tmp, sign)
        except OSError as e:
            raise UserError(
                f"{package}: cannot write next to it ({e.strerror}); sign a copy in a writable folder"
            ) from None
        result = check_package(tmp)
        got, why = check_signature(result.manifest.to_bytes(), result.signature, trusted)
        if got is None:
            raise UserError(f"{package}: the new signature does not verify ({why}); nothing was changed")
        os.chmod(tmp, package.stat().st_mode & 0o777)
        os.replace(tmp, package)
        cache.fsync_dir(package.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return fingerprint
