"""uki: Type #2, one EFI executable EFI/Linux/TOKEN-RELEASE.efi: systemd-stub with
.osrel .cmdline .uname .initrd .linux sections, made by ukify when the machine has it,
else by objcopy with each section at the next aligned address after the stub's own;
signed for secure boot when the root holds a db key (the UKI only exists on the target,
so only the target can sign it: docs/signing.md)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from distkernel.build.trust.secureboot import root_db_key, sign_for_root
from distkernel.core.errors import UserError
from distkernel.core.tools import missing_tool_error, run
from distkernel.target.install.layouts import KernelFiles, Placement, spec, stage_file
from distkernel.target.install.state import STATE_DIR
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction

SIGN_LOG = "var/log/distkernel/secureboot.log"


def pe_layout(stub: Path) -> tuple[int, int, int]:
    """(image base, section alignment, first free RVA) of a PE32+ file."""
    data = stub.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        raise UserError(f"{stub}: not a PE file; reinstall systemd-boot-efi")
    nsections, opt_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    opt = pe + 24
    if struct.unpack_from("<H", data, opt)[0] != 0x20B:
        raise UserError(f"{stub}: not a PE32+ (64-bit) stub; reinstall systemd-boot-efi")
    image_base, align = struct.unpack_from("<QI", data, opt + 24)
    end = 0
    for i in range(nsections):
        vsize, vaddr = struct.unpack_from("<II", data, opt + opt_size + 40 * i + 8)
        end = max(end, vaddr + vsize)
    return image_base, align, end


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def build_uki(files: KernelFiles, osrel: bytes, out: Path, work: Path) -> None:
    stubs: dict[str, str] = spec("uki")["stub"]
    stub = Path(stubs.get(files.arch, ""))
    if not stub.is_file():
        raise missing_tool_error(str(stub) if stubs.get(files.arch) else f"systemd-stub for {files.arch}")
    contents = {
        ".osrel": osrel,
        ".cmdline": files.cmdline.encode(),
        ".uname": files.release.encode(),
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = work / name.lstrip(".")
        paths[name].write_bytes(data)
    paths[".linux"] = files.image
    if files.initrd is not None:
        paths[".initrd"] = files.initrd
    ukify = shutil.which("ukify")
    if ukify:
        cmd: list[str | Path] = [ukify, "build", "--stub", stub, "--linux", files.image, "--uname", files.release]
        cmd += ["--cmdline", f"@{paths['.cmdline']}", "--os-release", f"@{paths['.osrel']}", "--output", out]
        if files.initrd is not None:
            cmd += ["--initrd", files.initrd]
        run(cmd, log=work / "ukify.log", what="ukify")
        return
    base, align, offset = pe_layout(stub)
    cmd = ["objcopy"]
    for name in spec("uki")["sections"]:
        if name not in paths:
            continue
        offset = _align(offset, align)
        cmd += ["--add-section", f"{name}={paths[name]}", "--change-section-vma", f"{name}={base + offset:#x}"]
        cmd += ["--set-section-flags", f"{name}=data,readonly"]
        offset += paths[name].stat().st_size
    run([*cmd, stub, out], log=work / "objcopy.log", what="objcopy (UKI)")
    _copy_timestamp(stub, out)


def _copy_timestamp(stub: Path, out: Path) -> None:
    """objcopy stamps PE files with the time of day; the stub's own stamp keeps the same
    inputs giving the same UKI. The PE checksum covers the stamp: recompute it."""
    src = stub.read_bytes()
    data = bytearray(out.read_bytes())
    pe, pe_out = struct.unpack_from("<I", src, 0x3C)[0], struct.unpack_from("<I", data, 0x3C)[0]
    data[pe_out + 8 : pe_out + 12] = src[pe + 8 : pe + 12]
    at = pe_out + 24 + 64  # CheckSum in the optional header
    struct.pack_into("<I", data, at, 0)
    struct.pack_into("<I", data, at, pe_checksum(bytes(data)))
    out.write_bytes(bytes(data))


def pe_checksum(data: bytes) -> int:
    """The PE image checksum (imagehlp's CheckSumMappedFile), with the field zeroed: the
    16-bit words summed with end-around carry, i.e. their sum modulo 0xFFFF, which is
    the whole file as one little-endian number modulo 0xFFFF (2**16 = 1 there)."""
    padded = data + b"\0" * (len(data) % 2)
    folded = int.from_bytes(padded, "little") % 0xFFFF
    if folded == 0 and any(padded):
        folded = 0xFFFF
    return folded + len(data)


def signed_uki(target: Target, files: KernelFiles, work: Path) -> tuple[Path, str]:
    """Build the UKI in WORK, then sign it in place when the root holds a db key, before
    it is staged: (the file, the signing certificate's subject or "" when unsigned)."""
    built = work / "uki.efi"
    build_uki(files, target.os_release(), built, work)
    log = target.path(SIGN_LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    if not sign_for_root(target.root, built, log):
        return built, ""
    found = root_db_key(target.root)
    assert found is not None
    from distkernel.build.trust.keys import load_certificates  # cryptography: only when signing

    return built, load_certificates(found[1], "secure-boot db certificate")[0].subject.rfc4514_string()


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    p = Placement()
    p.uki = p.image = target.fmt(spec("uki")["image"], files.release)
    work = tx.stage(f"{STATE_DIR}/uki-{files.release}")
    work.mkdir()
    built, p.uki_signer = signed_uki(target, files, work)
    stage_file(tx, built, p.uki, p)
    shutil.rmtree(work)
    return p
