"""Signing on a real kernel (the suite's rich test kernel, tests/data/recipes/rich.toml,
whose [sign] holds every key): modinfo names our signer, the booted kernel with
module.sig_enforce=1 loads our signed module and refuses an unsigned copy, the EFI image
passes sbverify, the manifest is signed, no private key is in the package or the
cache record, and a second build with the same key gives the same bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from distkernel.build.trust.keys import DB_CRT, DB_KEY, MODULE_PEM, PACKAGE_KEY, PACKAGE_PUB
from distkernel.build.trust.modsign import KEY_LINK
from tests.conftest import RICH_RECIPE, Built, cli
from tests.recipekeys import KEYS

RECIPE = RICH_RECIPE
SIG_MAGIC = b"~Module signature appended~\n"

pytestmark = pytest.mark.kernel


@dataclass(frozen=True)
class Signed:
    package: Path
    doc: dict  # type: ignore[type-arg]
    members: dict[str, bytes]


def members(package: Path) -> dict[str, bytes]:
    out = {}
    with (
        open(package, "rb") as raw,
        tarfile.open(
            fileobj=zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), mode="r|"
        ) as tar,
    ):
        for info in tar:
            f = tar.extractfile(info) if info.isfile() else None
            out[info.name] = f.read() if f else b""
    return out


@pytest.fixture(scope="session")
def signed(rich_package: Built) -> Signed:
    return Signed(rich_package.package, rich_package.first_run, members(rich_package.package))


def module(signed: Signed, tmp: Path, name: str = "test_module") -> Path:
    path = next(p for p in signed.members if p.endswith(f"/{name}.ko"))
    target = tmp / f"{name}.ko"
    target.write_bytes(signed.members[path])
    return target


def unsigned_copy(ko: bytes) -> bytes:
    """The module without its appended signature (struct module_signature: sig_len is
    the big-endian u32 at its end, right before the magic)."""
    assert ko.endswith(SIG_MAGIC)
    sig_len = int.from_bytes(ko[-len(SIG_MAGIC) - 4 : -len(SIG_MAGIC)], "big")
    return ko[: len(ko) - len(SIG_MAGIC) - 12 - sig_len]


def test_modinfo_names_our_signer_and_metadata_records_it(signed: Signed, tmp_path: Path) -> None:
    ko = module(signed, tmp_path)
    info = subprocess.run(["modinfo", ko], capture_output=True, text=True, check=True).stdout
    assert "signer:         distkernel-test module signing key" in info, info
    assert "sig_hashalgo:   sha256" in info
    meta = signed.doc["metadata"]["extra"]["signers"]
    assert meta["modules"]["subject"] == "distkernel-test module signing key"
    sig_key = subprocess.run(["modinfo", "-F", "sig_key", ko], capture_output=True, text=True, check=True).stdout
    assert int("".join(sig_key.split()).replace(":", ""), 16) == int(meta["modules"]["serial"], 16)


def test_config_names_the_key_by_a_relative_link_only(signed: Signed) -> None:
    config = signed.members["kernel/config"].decode()
    assert f'CONFIG_MODULE_SIG_KEY="{KEY_LINK}"' in config
    assert str(KEYS) not in config and str(RECIPE.parent) not in config


def test_no_private_key_in_the_package_or_the_cache_record(signed: Signed) -> None:
    from cryptography.hazmat.primitives import serialization

    secrets = []
    for name in (PACKAGE_KEY, MODULE_PEM, DB_KEY):
        key = serialization.load_pem_private_key((KEYS / name).read_bytes(), password=None)
        secrets.append(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        pem = (KEYS / name).read_text()
        body = pem.split("-----BEGIN PRIVATE KEY-----")[1].split("-----END PRIVATE KEY-----")[0]
        secrets += [line.encode() for line in body.split() if len(line) >= 40][:3]
    cache_entry = (
        Path(os.environ.get("DISTKERNEL_CACHE", Path.home() / ".cache" / "distkernel")) / "packages" / signed.doc["key"]
    )
    blobs = {**signed.members, "record.json": (cache_entry / "record.json").read_bytes()}
    for name, data in blobs.items():
        for secret in secrets:
            assert secret not in data, f"private key material in {name}"


def test_manifest_signed_and_image_passes_sbverify(signed: Signed, tmp_path: Path) -> None:
    assert cli("verify", signed.package, "--key", KEYS / PACKAGE_PUB).code == 0
    image = tmp_path / "vmlinuz"
    image.write_bytes(signed.members["kernel/vmlinuz"])
    ok = subprocess.run(["sbverify", "--cert", KEYS / DB_CRT, image], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_same_key_same_bytes(signed: Signed, tmp_path: Path) -> None:
    again = cli("build", RECIPE, "--out", tmp_path, "--json")
    assert again.code == 0, again.err
    doc = again.json()
    # In a quiet tree the package cache answers (same key). The bytes are compared
    # either way: when build-side code changed in between, make re-ran modules_install,
    # which signed every module again with the same key.
    digest = hashlib.sha256(Path(doc["package"]).read_bytes()).hexdigest()
    assert digest == hashlib.sha256(signed.package.read_bytes()).hexdigest()


INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "DK-ENFORCE $(/bin/busybox cat /sys/module/module/parameters/sig_enforce)"
if /bin/busybox insmod /unsigned.ko; then echo "DK-UNSIGNED loaded"; else echo "DK-UNSIGNED refused"; fi
if /bin/busybox insmod /signed.ko; then echo "DK-SIGNED loaded"; else echo "DK-SIGNED refused"; fi
echo DK-DONE
/bin/busybox reboot -f
"""


def initramfs(tmp: Path, signed_ko: bytes) -> Path:
    """A cpio written with the system `cpio`: busybox (no applet links, so a broken
    /init panics instead of falling back), /dev/console, and the two modules."""
    tree = tmp / "tree"
    for d in ("bin", "dev", "proc", "sys"):
        (tree / d).mkdir(parents=True)
    shutil.copyfile("/bin/busybox", tree / "bin" / "busybox")
    (tree / "bin" / "busybox").chmod(0o755)
    (tree / "init").write_text(INIT)
    (tree / "init").chmod(0o755)
    os.mknod(tree / "dev" / "console", 0o600 | 0o020000, os.makedev(5, 1))
    (tree / "signed.ko").write_bytes(signed_ko)
    (tree / "unsigned.ko").write_bytes(unsigned_copy(signed_ko))
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    out = tmp / "initrd.cpio"
    with open(out, "wb") as f:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, input="\n".join(names).encode(), stdout=f, check=True
        )
    return out


def test_booted_kernel_enforcing_signatures_loads_ours_and_refuses_unsigned(signed: Signed, tmp_path: Path) -> None:
    image = tmp_path / "bzImage"
    image.write_bytes(signed.members["kernel/vmlinuz"])
    ko = signed.members[next(p for p in signed.members if p.endswith("/test_module.ko"))]
    cmd = [
        "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", "-net", "none",
        "-kernel", str(image), "-initrd", str(initramfs(tmp_path, ko)),
        "-append", "console=ttyS0 panic=-1 module.sig_enforce=1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    lines = [line.strip() for line in proc.stdout.splitlines()]
    console = "\n".join(lines[-40:])
    assert "DK-DONE" in lines, console
    assert "DK-ENFORCE Y" in lines, console
    assert "DK-UNSIGNED refused" in lines, console
    assert "DK-SIGNED loaded" in lines, console
    assert any("test_module: Hello, world" in line for line in lines), console


def test_install_from_binhost(signed: Signed, tmp_path: Path) -> None:
    """Publish on the build server, install on a client that trusts
    the build key, from the repo over HTTP, never building."""
    repo, root = tmp_path / "repo", tmp_path / "root"
    assert cli("repo", "init", repo, "--key", KEYS / PACKAGE_KEY).code == 0
    assert cli("repo", "add", repo, signed.package).code == 0
    (root / "etc" / "distkernel" / "trusted.d").mkdir(parents=True)
    shutil.copyfile(KEYS / PACKAGE_PUB, root / "etc" / "distkernel" / "trusted.d" / "build.pub")
    server = subprocess.Popen(
        [sys.executable, "-m", "distkernel", "repo", "serve", str(repo), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" at ", 1)[1].strip()
        release = signed.doc["metadata"]["kernel_release"]
        run = cli(
            "install", f"qemu-rich@{release}", "--from", url,
            "--root", root, "--layout", "plain", "--initramfs", "none", "--json",
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert run.code == 0, run.err
    assert run.json()["release"] == release
    assert list(root.rglob("test_module.ko"))
