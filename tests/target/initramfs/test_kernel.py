"""The initramfs backends on the real default package: builtin and dracut images for its
release, and the builtin one booted in qemu (TCG) onto an ext4 root on virtio-blk, both
modules the image must load, found by device, UUID= and LABEL=; a missing root must say
why and drop to a shell."""

from __future__ import annotations

import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from distkernel.target.initramfs import InitramfsSpec, make_initramfs
from distkernel.target.initramfs.builtin import find_busybox
from distkernel.target.initramfs.compress import decompress
from distkernel.target.initramfs.cpio import members

pytestmark = pytest.mark.kernel

UUID = "0b5e0f3a-52a5-4c1e-9d7e-5c0ffee00001"
LABEL = "dkroot"
MARKER = "DISTKERNEL-ROOT-INIT"
ROOT_INIT = f"""#!/bin/busybox sh
/bin/busybox echo "{MARKER} init=$0 mount=$(/bin/busybox grep ' / ' /proc/mounts)"
/bin/busybox poweroff -f
"""


@dataclass(frozen=True)
class Kernel:
    root: Path  # a target root holding lib/modules/RELEASE after depmod
    release: str
    image: Path
    config: Path
    disk: Path  # ext4 root disk whose /sbin/init prints MARKER

    def spec(self, **kw: object) -> InitramfsSpec:
        return InitramfsSpec(self.release, self.root / "lib/modules" / self.release, self.config, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def kernel(default_package, tmp_path_factory: pytest.TempPathFactory) -> Kernel:  # type: ignore[no-untyped-def]
    top = tmp_path_factory.mktemp("initramfs-kernel")
    release = default_package.metadata["kernel_release"]
    subprocess.run(["tar", "--zstd", "-xf", default_package.package, "-C", top, "kernel", "modules"], check=True)
    mods = top / "root/lib/modules" / release
    mods.parent.mkdir(parents=True)
    (top / "modules").rename(mods)
    subprocess.run(["depmod", "-b", top / "root", release], check=True)
    tree = top / "disk-tree"
    for d in ("bin", "sbin", "proc", "sys", "dev"):
        (tree / d).mkdir(parents=True)
    (tree / "bin/busybox").write_bytes(find_busybox(tree, "x86_64"))
    (tree / "bin/busybox").chmod(0o755)
    (tree / "sbin/init").write_text(ROOT_INIT)
    (tree / "sbin/init").chmod(0o755)
    disk = top / "root.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", LABEL, "-U", UUID, "-d", tree, disk, "16M"], check=True)
    return Kernel(top / "root", release, top / "kernel/vmlinuz", top / "kernel/config", disk)


def boot(k: Kernel, initrd: Path, append: str, stop: str, timeout: float = 180) -> list[str]:
    """Serial lines until one contains STOP (then qemu is killed), or the guest ends."""
    disk = f"file={k.disk},format=raw,if=virtio,snapshot=on"
    argv: list[str | Path] = ["qemu-system-x86_64", "-machine", "accel=tcg", "-m", "256", "-nographic",
                              "-no-reboot", "-net", "none", "-kernel", k.image, "-initrd", initrd, "-drive", disk,
                              "-append", f"console=ttyS0 panic=-1 {append}"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines: list[str] = []
    buf = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=1):
                continue
            chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            buf += chunk
            *complete, buf = buf.split(b"\n")
            lines += [c.decode(errors="replace").rstrip("\r") for c in complete]
            if any(stop in line for line in lines):
                break
    finally:
        proc.kill()
        proc.wait()
    return lines


@pytest.fixture(scope="module")
def builtin_image(kernel: Kernel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("builtin") / "initrd.img"
    result = make_initramfs("builtin", kernel.spec(modules=("test_module",)), out, root=kernel.root)
    assert result.compression == "zstd"
    assert {"virtio_blk", "ext4", "test_module"} <= set(result.modules)
    return out


def test_builtin_and_dracut_carry_the_root_modules(kernel: Kernel, builtin_image: Path, tmp_path: Path) -> None:
    names = {n for n, _, _ in members(decompress(builtin_image.read_bytes()))}
    mods = f"lib/modules/{kernel.release}/kernel"
    assert {f"{mods}/drivers/block/virtio_blk.ko", f"{mods}/fs/ext4/ext4.ko", "init", "bin/busybox"} <= names
    dracut = make_initramfs("dracut", kernel.spec(modules=("test_module",)), tmp_path / "d.img", root=kernel.root)
    assert dracut.compression == "zstd" and dracut.path == tmp_path / "d.img"
    assert {"virtio_blk", "ext4", "test_module"} <= set(dracut.modules)
    assert builtin_image.stat().st_size < dracut.bytes


@pytest.mark.parametrize("root", ["/dev/vda", f"UUID={UUID}", f"LABEL={LABEL}"])
def test_builtin_image_boots_the_root(kernel: Kernel, builtin_image: Path, root: str) -> None:
    lines = boot(kernel, builtin_image, f"root={root} rd.timeout=60", MARKER)
    hit = [line for line in lines if MARKER in line]
    assert hit, "\n".join(lines[-40:])
    assert "init=/sbin/init" in hit[0] and " ext4 ro," in hit[0], hit[0]
    assert any("test_module: Hello, world" in line for line in lines)  # the requested module loaded


def test_missing_root_says_why_and_drops_to_a_shell(kernel: Kernel, builtin_image: Path) -> None:
    lines = boot(kernel, builtin_image, "root=LABEL=nosuch rd.timeout=2", "dropping to a shell")
    assert any("initramfs: error: root device LABEL=nosuch did not appear within 2 s" in x for x in lines), lines[-30:]
    assert any("initramfs: dropping to a shell" in line for line in lines)
    assert not any("Kernel panic" in line for line in lines)
