"""The builtin backend on a fake modules dir: contents, compression the kernel config
allows (checked with the real zstd/gzip/cpio), determinism, and bad input."""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

from distkernel.core.errors import UserError
from distkernel.target.initramfs import InitramfsSpec, default_backend, make_initramfs
from distkernel.target.initramfs.builtin import LOAD_LIST, default_init
from distkernel.target.initramfs.compress import decompress
from distkernel.target.initramfs.cpio import members

from .conftest import RELEASE, MakeConfig

MODS = f"lib/modules/{RELEASE}"


def spec(root: Path, config: Path | None, **kw: object) -> InitramfsSpec:
    return InitramfsSpec(RELEASE, root / "lib/modules" / RELEASE, config, **kw)  # type: ignore[arg-type]


def listing(image: Path, unpack: list[str]) -> list[str]:
    cpio = subprocess.run([*unpack, image], capture_output=True, check=True).stdout
    names = subprocess.run(["cpio", "-t", "--quiet"], input=cpio, capture_output=True, check=True).stdout
    return names.decode().split()


@pytest.mark.parametrize(
    ("lines", "compression", "unpack"),
    [
        (["CONFIG_RD_ZSTD=y", "CONFIG_RD_GZIP=y"], "zstd", ["zstd", "-dc"]),
        (["CONFIG_RD_GZIP=y", "# CONFIG_RD_ZSTD is not set"], "gzip", ["gzip", "-dc"]),
        ([], "none", ["cat"]),
    ],
)
def test_compression_follows_the_kernel_config(
    fake_root: Path, config: MakeConfig, tmp_path: Path, lines: list[str], compression: str, unpack: list[str]
) -> None:
    out = tmp_path / "initrd.img"
    result = make_initramfs("builtin", spec(fake_root, config(*lines)), out, root=fake_root)
    assert result.compression == compression and result.bytes == out.stat().st_size
    names = listing(out, unpack)
    assert {"init", "bin/busybox", "dev/console", f"{MODS}/kernel/fs/ext4/ext4.ko", f"{MODS}/modules.dep"} <= set(names)


def test_root_classes_requested_modules_and_firmware(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    s = spec(fake_root, config("CONFIG_RD_ZSTD=y"), modules=("fakewifi", "test-module"))
    result = make_initramfs("builtin", s, tmp_path / "i.img", root=fake_root)
    assert set(result.modules) == {"virtio_blk", "ext4", "jbd2", "mbcache", "crc32c_generic", "fakewifi",
                                   "cfg80211", "test_module"}  # fmt: skip
    assert result.missing_firmware == ("fake/gone.bin",)
    files = {n: d for n, _, d in members(decompress((tmp_path / "i.img").read_bytes()))}
    assert files["lib/firmware/fake/wifi.bin"] == b"firmware blob"
    # What /init loads at start: requested modules and filesystems, dependencies first.
    load = files[LOAD_LIST].decode().split()
    assert load.index("jbd2") < load.index("ext4") and "fakewifi" in load and "virtio_blk" not in load
    assert "alias virtio:d00000002v* virtio_blk" in files[f"{MODS}/modules.alias"].decode()
    assert files["init"].decode() == default_init()


def test_without_root_support_only_requested_modules(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    s = spec(fake_root, config(), modules=("test_module",), cmdline_root=False)
    assert make_initramfs("builtin", s, tmp_path / "i.img", root=fake_root).modules == ("test_module",)


def test_custom_init_and_extra_files(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    s = spec(fake_root, config(), init="#!/bin/busybox sh\necho mine\n", extra_files={"etc/x": b"1", "bin/t": b"#!x"})
    make_initramfs("builtin", s, tmp_path / "i.img", root=fake_root)
    got = {n: (m, d) for n, m, d in members((tmp_path / "i.img").read_bytes())}
    assert got["init"][1] == b"#!/bin/busybox sh\necho mine\n"
    assert got["etc/x"][0] & 0o777 == 0o644 and got["bin/t"][0] & 0o777 == 0o755


def test_same_inputs_same_bytes(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    s = spec(fake_root, config("CONFIG_RD_ZSTD=y"), modules=("fakewifi",))
    make_initramfs("builtin", s, tmp_path / "a.img", root=fake_root)
    make_initramfs("builtin", s, tmp_path / "b.img", root=fake_root)
    assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_the_root_static_busybox_is_preferred(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/busybox").write_bytes(b"not an elf")  # unusable: the host's is taken
    s = spec(fake_root, config())
    make_initramfs("builtin", s, tmp_path / "a.img", root=root)
    host = {n: d for n, _, d in members((tmp_path / "a.img").read_bytes())}["bin/busybox"]
    mine = bytearray(host)
    mine[-1] ^= 1
    (root / "usr/bin/busybox").write_bytes(bytes(mine))
    make_initramfs("builtin", s, tmp_path / "b.img", root=root)
    assert {n: d for n, _, d in members((tmp_path / "b.img").read_bytes())}["bin/busybox"] == bytes(mine)


def test_none_backend_writes_nothing(fake_root: Path, tmp_path: Path) -> None:
    result = make_initramfs("none", spec(fake_root, None), tmp_path / "i.img", root=fake_root)
    assert result.path is None and result.backend == "none" and not (tmp_path / "i.img").exists()


@pytest.mark.parametrize(
    ("backend", "kw", "lines", "needle"),
    [
        ("mkinitcpio", {}, [], "unknown initramfs backend"),
        ("builtin", {"modules": ("nosuch",)}, [], "nosuch not found"),
        ("builtin", {}, ["# CONFIG_BLK_DEV_INITRD is not set"], "CONFIG_BLK_DEV_INITRD"),
    ],
)
def test_bad_input_is_one_clear_user_error(
    fake_root: Path,
    config: MakeConfig,
    tmp_path: Path,
    backend: str,
    kw: dict[str, object],
    lines: list[str],
    needle: str,
) -> None:
    cfg = config(*lines)
    if lines:
        cfg.write_text("\n".join(lines))
    with pytest.raises(UserError, match=needle):
        make_initramfs(backend, spec(fake_root, cfg, **kw), tmp_path / "i.img", root=fake_root)
    assert not (tmp_path / "i.img").exists()


def test_default_backend_from_install_conf(tmp_path: Path) -> None:
    assert default_backend(tmp_path) == "builtin"
    conf = tmp_path / "etc/kernel/install.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("layout=bls\ninitrd_generator=dracut  # ours\n")
    assert default_backend(tmp_path) == "dracut"
    conf.write_text('initrd_generator="none"\n')
    assert default_backend(tmp_path) == "none"
    conf.write_text("initrd_generator=ugrd\n")
    with pytest.raises(UserError, match=r"install.conf:1: initrd_generator=ugrd"):
        default_backend(tmp_path)


def test_init_script_parses() -> None:
    subprocess.run(["busybox", "sh", "-n", "-c", default_init()], check=True)


def test_compressed_modules_are_stored_plain(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(fake_root, root)
    mods = root / "lib/modules" / RELEASE
    ext4 = mods / "kernel/fs/ext4/ext4.ko"
    plain = ext4.read_bytes()
    (mods / "kernel/fs/ext4/ext4.ko.xz").write_bytes(lzma.compress(plain))
    ext4.unlink()
    dep = mods / "modules.dep"
    dep.write_text(dep.read_text().replace("ext4.ko:", "ext4.ko.xz:"))
    make_initramfs("builtin", spec(root, config()), tmp_path / "i.img", root=root)
    files = {n: d for n, _, d in members((tmp_path / "i.img").read_bytes())}
    assert files[f"{MODS}/kernel/fs/ext4/ext4.ko"] == plain
    assert "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko" in files[f"{MODS}/modules.dep"].decode()


def test_a_kernel_without_modules_gets_busybox_and_init_only(config: MakeConfig, tmp_path: Path) -> None:
    s = InitramfsSpec("6.1.0-nomods", tmp_path / "lib/modules/6.1.0-nomods", config())
    result = make_initramfs("builtin", s, tmp_path / "i.img", root=tmp_path)
    assert result.modules == ()
    names = {n for n, _, _ in members((tmp_path / "i.img").read_bytes())}
    assert "init" in names and not any(n.startswith("lib/modules/") for n in names)


def test_zstd_frames_suit_the_kernel_decompressor(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    make_initramfs("builtin", spec(fake_root, config("CONFIG_RD_ZSTD=y")), tmp_path / "i.img", root=fake_root)
    params = zstandard.get_frame_parameters((tmp_path / "i.img").read_bytes())
    assert params.content_size > 0 and params.window_size <= 1 << 27 and not params.dict_id


def test_a_truncated_busybox_in_the_root_is_passed_over(fake_root: Path, config: MakeConfig, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    s = spec(fake_root, config())
    make_initramfs("builtin", s, tmp_path / "a.img", root=root)
    host = {n: d for n, _, d in members((tmp_path / "a.img").read_bytes())}["bin/busybox"]
    (root / "usr/bin/busybox").write_bytes(host[:64])  # the ELF header alone: program headers beyond the end
    make_initramfs("builtin", s, tmp_path / "b.img", root=root)
    assert {n: d for n, _, d in members((tmp_path / "b.img").read_bytes())}["bin/busybox"] == host


def test_install_conf_read_as_kernel_install_reads_it(tmp_path: Path) -> None:
    """/etc/kernel/install.conf wins whole over /usr/lib/kernel/install.conf (no merging),
    and an error names the file that was read."""
    usr = tmp_path / "usr/lib/kernel/install.conf"
    usr.parent.mkdir(parents=True)
    usr.write_text("initrd_generator=ugrd\n")
    with pytest.raises(UserError, match=r"usr/lib/kernel/install.conf:1: initrd_generator=ugrd"):
        default_backend(tmp_path)
    etc = tmp_path / "etc/kernel/install.conf"
    etc.parent.mkdir(parents=True)
    etc.write_text("layout=bls\n")
    assert default_backend(tmp_path) == "builtin"
