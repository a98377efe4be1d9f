"""OpenPGP checks with a real verifier (gpgv): a clearsigned file's signed text, or a
detached signature over a (decompressed) file, against one keyring file. gpgv trusts
exactly the keys in that file, never the user's keyring."""

from __future__ import annotations

import tempfile
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.core.tools import call

# A kernel.org tarball is signed uncompressed: the signature covers the .tar, so the
# verifier reads the decompressed stream (name suffix -> decompressor).
DECOMPRESS = {".xz": "xz -dc", ".gz": "gzip -dc", ".zst": "zstd -dcq", ".bz2": "bzip2 -dc", ".tar": "cat"}


def clearsigned_text(signed: bytes, keyring: Path, where: str) -> str:
    """The text a clearsigned document signs, when a key of KEYRING made the signature;
    a bad or unknown signature refuses (exit 2) naming WHERE."""
    with tempfile.TemporaryDirectory(prefix="distkernel-gpgv-") as tmp:
        doc, out = Path(tmp) / "doc.asc", Path(tmp) / "doc.txt"
        doc.write_bytes(signed)
        done = call(
            ["gpgv", "--homedir", Path(tmp) / "home", "--keyring", keyring.resolve(), "--output", out, doc],
            ok=None,
        )
        if done.code != 0 or not out.is_file():
            raise UserError(f"{where}: {_why(done.output)}; the signature does not verify against {keyring}")
        return out.read_text(errors="replace")


def verify_detached(data: Path, name: str, signature: Path, keyring: Path, where: str) -> None:
    """SIGNATURE is a detached signature, by a key of KEYRING, over DATA (a file called
    NAME, which says its compression) as uncompressed."""
    tool = next((v for k, v in DECOMPRESS.items() if name.endswith(k)), None)
    if tool is None:
        raise UserError(f"{where}: {name}: unknown compression; a tarball ends .tar.xz, .tar.gz or .tar.zst")
    with tempfile.TemporaryDirectory(prefix="distkernel-gpgv-") as tmp:
        script = f'set -o pipefail; {tool} "$1" | gpgv --homedir "$2" --keyring "$3" "$4" -'
        done = call(
            ["bash", "-c", script, "verify", data, Path(tmp) / "home", keyring.resolve(), signature],
            ok=None,
        )
    if done.code != 0:
        raise UserError(f"{where}: {_why(done.output)}; the signature does not verify against {keyring}")


def _why(output: str) -> str:
    lines = [x.removeprefix("gpgv: ").strip() for x in output.splitlines() if x.strip()]
    for marker in ("BAD signature", "No public key", "no valid OpenPGP data", "no signature found"):
        hit = next((x for x in lines if marker in x), None)
        if hit:
            return f"bad signature ({hit})"
    return "bad signature (" + (lines[-1] if lines else "gpgv failed") + ")"
