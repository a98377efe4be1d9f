"""A fake lib/modules/RELEASE for the fast tests: real ELF objects (gcc -c) with a
.modinfo section, and hand-written depmod indexes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

RELEASE = "6.1.0-fake"
MakeConfig = Callable[..., Path]
# path -> (dependencies, firmware named in .modinfo)
MODULES = {
    "kernel/drivers/block/virtio_blk.ko": ([], []),
    "kernel/fs/ext4/ext4.ko": (["kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko"], []),
    "kernel/fs/jbd2/jbd2.ko": ([], []),
    "kernel/fs/mbcache.ko": ([], []),
    "kernel/crypto/crc32c_generic.ko": ([], []),
    "kernel/drivers/net/wifi/fakewifi.ko": (["kernel/net/wireless/cfg80211.ko"], ["fake/wifi.bin", "fake/gone.bin"]),
    "kernel/net/wireless/cfg80211.ko": ([], []),
    "kernel/lib/test-module.ko": ([], []),
}
ALIASES = [
    "alias virtio:d00000002v* virtio_blk",
    "alias crc32c crc32c_generic",
    "alias fs-ext4 ext4",
    "alias pci:v00008086d0000FFFFsv*sd*bc*sc*i* fakewifi",
]


def fake_ko(workdir: Path, firmware: list[str]) -> bytes:
    src = workdir / "m.c"
    lines = [f'__attribute__((section(".modinfo"), used)) static const char f{i}[] = "firmware={fw}";'
             for i, fw in enumerate(firmware)]  # fmt: skip
    src.write_text("\n".join([*lines, 'static const char lic[] __attribute__((section(".modinfo"), used)) = '
                              '"license=GPL";', "int x;"]))  # fmt: skip
    subprocess.run(["gcc", "-c", "-o", workdir / "m.o", src], check=True)
    return (workdir / "m.o").read_bytes()


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT with lib/modules/RELEASE (indexes included) and lib/firmware/fake/wifi.bin."""
    root = tmp_path_factory.mktemp("fakeroot")
    work = tmp_path_factory.mktemp("ko")
    plain, with_fw = fake_ko(work, []), fake_ko(work, MODULES["kernel/drivers/net/wifi/fakewifi.ko"][1])
    mods = root / "lib/modules" / RELEASE
    for path, (_, firmware) in MODULES.items():
        (mods / path).parent.mkdir(parents=True, exist_ok=True)
        (mods / path).write_bytes(with_fw if firmware else plain)
    (mods / "modules.dep").write_text("".join(f"{p}: {' '.join(d)}\n".replace(" \n", "\n")
                                              for p, (d, _) in MODULES.items()))  # fmt: skip
    (mods / "modules.softdep").write_text("# Soft dependencies\nsoftdep ext4 pre: crc32c post: nosuchmod\n")
    (mods / "modules.alias").write_text("# Aliases\n" + "\n".join(ALIASES) + "\n")
    (mods / "modules.builtin").write_text("kernel/fs/fat/vfat.ko\n")
    (root / "lib/firmware/fake").mkdir(parents=True)
    (root / "lib/firmware/fake/wifi.bin").write_bytes(b"firmware blob")
    return root


@pytest.fixture
def config(tmp_path: Path) -> MakeConfig:
    """A kernel .config with the given extra lines (initrd and scripts always on)."""

    def make(*lines: str) -> Path:
        path = tmp_path / "config"
        path.write_text("\n".join(["CONFIG_BLK_DEV_INITRD=y", "CONFIG_BINFMT_SCRIPT=y", "CONFIG_X86_64=y", *lines]))
        return path

    return make
