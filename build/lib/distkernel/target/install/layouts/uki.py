"""uki: Type #2, one EFI executable EFI/Linux/TOKEN-RELEASE.efi: systemd-stub with
.osrel .cmdline .uname .initrd .linux sections, made by ukify when the machine has it,
else by objcopy with each section at the next aligned address after the stub's own;
signed for secure boot when the root holds a db key (the UKI only exists on the target,
so only the target can sign it: docs/signing.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

from distkernel.build.pe import align_up, copy_timestamp, pe_layout
from distkernel.build.trust.secureboot import root_db_key, sign_for_root
from distkernel.core.paths import SECUREBOOT_LOG, STATE_DIR, under_root
from distkernel.core.tools import missing_tool_error, run
from distkernel.target.install.layouts.base import KernelFiles, Layout, Placement, boot_text, spec, stage_file
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction

SIGN_LOG = SECUREBOOT_LOG


def build_uki(files: KernelFiles, osrel: bytes, out: Path, work: Path) -> None:
    stubs: dict[str, str] = spec("uki")["stub"]
    stub = Path(stubs.get(files.arch, ""))
    if not stub.is_file():
        raise missing_tool_error(str(stub) if stubs.get(files.arch) else f"systemd-stub for {files.arch}")
    contents = {
        ".osrel": osrel,
        ".cmdline": boot_text("the UKI's .cmdline", [files.cmdline]).rstrip(b"\n"),
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
    base, align, offset = pe_layout(stub, "reinstall systemd-boot-efi")
    cmd = ["objcopy"]
    for name in spec("uki")["sections"]:
        if name not in paths:
            continue
        offset = align_up(offset, align)
        cmd += ["--add-section", f"{name}={paths[name]}", "--change-section-vma", f"{name}={base + offset:#x}"]
        cmd += ["--set-section-flags", f"{name}=data,readonly"]
        offset += paths[name].stat().st_size
    run([*cmd, stub, out], log=work / "objcopy.log", what="objcopy (UKI)")
    copy_timestamp(stub, out)


def signed_uki(target: Target, files: KernelFiles, work: Path) -> tuple[Path, str]:
    """Build the UKI in WORK, then sign it in place when the root holds a db key, before
    it is staged: (the file, the signing certificate's subject or "" when unsigned)."""
    built = work / "uki.efi"
    build_uki(files, target.os_release(), built, work)
    log = under_root(target.root, SIGN_LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    if not sign_for_root(target.root, built, log):
        return built, ""
    found = root_db_key(target.root)
    assert found is not None
    from distkernel.build.trust.keys import load_certificates  # cryptography: only when signing

    return built, load_certificates(found[1], "secure-boot db certificate")[0].subject.rfc4514_string()


def writes(target: Target, release: str) -> list[str]:
    return [target.fmt(spec("uki")["image"], release)]


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    p = Placement()
    p.uki = p.image = target.fmt(spec("uki")["image"], files.release)
    work = tx.stage(f"{STATE_DIR}/uki-{files.release}")
    work.mkdir()
    built, p.uki_signer = signed_uki(target, files, work)
    stage_file(tx, built, p.uki, p)
    shutil.rmtree(work)
    return p


LAYOUT = Layout("uki", place, writes)
