"""`distkernel sign PKG --key KEY`: sign a package built without a key (or sign it
again with another key) so that binhost clients accept it. Only the signature changes:
the writer cuts a package into zstd frames (build/package/frames.py), and signing
writes a new first frame (metadata, manifest, the new signature) and a new last one
(the archive's end, whose padding follows the head's length) around the payload
frames' compressed bytes, copied as they are: nothing is recompressed, and the result
is byte for byte what a build with `[sign] package = KEY` writes. A package framed
otherwise (one frame, from an older writer) is rewritten member by member into the
writer's frames. Either way the result is judged whole by the one reader and its
signature verified before it replaces the package."""

from __future__ import annotations

import itertools
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from distkernel.build.package import frames
from distkernel.build.package.format import SIGNATURE, canonical_json, part_of
from distkernel.build.package.reader import PackageError, VerifiedPackage, check_package, read_head
from distkernel.build.package.writer import compress_frame, head, write_frames
from distkernel.build.trust.keys import load_package_private, public_fingerprint
from distkernel.build.trust.signing import TrustedKey, check_signature, signer
from distkernel.core import cache
from distkernel.core.errors import UserError

COPY = 1 << 20
FEED = 512  # compressed bytes per decompressor call, as the reader feeds them


def _control(verified: VerifiedPackage, signature: bytes | None) -> tuple[bytes, bytes]:
    """The manifest's bytes and the head a signed build writes with SIGNATURE."""
    meta_bytes = canonical_json(verified.metadata.to_json())  # the reader took only this spelling
    manifest_bytes = verified.manifest_bytes
    return manifest_bytes, head(meta_bytes, manifest_bytes, signature, verified.metadata.build_date)


def _frame(f: BinaryIO, start: int, end: int, limit: int) -> bytes | None:
    """What the frame at START..END holds; None when it is more than LIMIT bytes or broken."""
    if end - start > limit + limit // 1024 + 64:  # more than the frame of LIMIT stored bytes
        return None
    f.seek(start)
    data = f.read(end - start)
    d = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    try:
        for at in range(0, len(data), FEED):
            out += d.decompress(data[at : at + FEED])
            if len(out) > limit:
                return None
    except zstandard.ZstdError:
        return None
    return bytes(out) if d.eof and not d.unused_data else None


def _copy(f: BinaryIO, start: int, end: int, out: BinaryIO) -> None:
    f.seek(start)
    left = end - start
    while left:
        chunk = f.read(min(COPY, left))
        if not chunk:
            raise UserError(f"{f.name}: changed while it was signed; run the command again")
        out.write(chunk)
        left -= len(chunk)


def _resign(src: Path, dst: Path, sign: Callable[[bytes], bytes]) -> bool:
    """DST: SRC with a new head and tail around its payload frames, copied as they are.
    False (nothing written) when SRC is not in the writer's frames."""
    verified = read_head(src)  # the control members, strictly; the payload is judged in DST
    manifest_bytes, old_head = _control(verified, verified.signature)
    with open(src, "rb") as f:
        found = frames.spans(f, os.fstat(f.fileno()).st_size)
        if found is None or len(found) < 3:
            return False
        (head_at, head_end), (tail_at, tail_end) = found[0], found[-1]
        payload_at, payload_end = head_end, tail_at  # the payload's frames, one after the other
        if _frame(f, head_at, head_end, len(old_head)) != old_head:
            return False
        old_tail = _frame(f, tail_at, tail_end, frames.END + frames.RECORD)
        if old_tail is None or len(old_tail) < frames.END or old_tail.strip(b"\0"):
            return False
        new_head = _control(verified, sign(manifest_bytes))[1]
        # The old archive ended on a whole record: that gives the payload's length
        # modulo a record, all the new tail depends on.
        payload_length = -(len(old_head) + len(old_tail))
        with open(dst, "wb") as out:
            out.write(compress_frame(new_head))
            _copy(f, payload_at, payload_end, out)
            out.write(compress_frame(frames.tail(len(new_head) + payload_length)))
            out.flush()
            os.fsync(out.fileno())
    return True


def _payload(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for index, info in enumerate(tar):
        if index >= 2 and not (index == 2 and info.name == SIGNATURE):
            yield info


def _members(tar: tarfile.TarFile) -> Iterator[Iterator[bytes]]:
    """The payload members' tar bytes, streamed (never a whole file in memory), a group
    for each run of members of one part (format.part_of): a frame each."""
    for _part, infos in itertools.groupby(_payload(tar), key=lambda info: part_of(info.name)):
        yield (piece for info in infos for piece in frames.copied(tar, info, COPY))


def _rewrite(src: Path, dst: Path, sign: Callable[[bytes], bytes]) -> None:
    """DST: SRC rewritten member by member into the writer's frames."""
    verified = check_package(src)  # judged whole by the one reader before a byte of it is copied
    manifest_bytes = verified.manifest_bytes
    new_head = _control(verified, sign(manifest_bytes))[1]
    with (
        open(src, "rb") as f,
        tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|") as tar,
        open(dst, "wb") as out,
    ):
        write_frames(out, new_head, _members(tar))
        out.flush()
        os.fsync(out.fileno())


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
            if not _resign(package, tmp, sign):
                _rewrite(package, tmp, sign)
        except OSError as e:
            raise UserError(
                f"{package}: cannot write next to it ({e.strerror}); sign a copy in a writable folder"
            ) from None
        try:
            result = check_package(tmp)
        except PackageError as e:  # the payload copied from PACKAGE: name it, not the temporary file
            raise PackageError(str(e).replace(str(tmp), str(package), 1)) from None
        got, why = check_signature(result.manifest_bytes, result.signature, trusted)
        if got is None:
            raise UserError(f"{package}: the new signature does not verify ({why}); nothing was changed")
        os.chmod(tmp, package.stat().st_mode & 0o777)
        os.replace(tmp, package)
        cache.fsync_dir(package.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return fingerprint
