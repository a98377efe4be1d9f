"""The module closure from depmod's output: dependencies, softdeps, aliases, firmware."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.core.errors import UserError
from distkernel.target.initramfs.closure import find_firmware, module_name, plain_path, read_index

from .conftest import RELEASE


def test_names_and_plain_paths() -> None:
    assert module_name("kernel/fs/ext4/ext4.ko.zst") == "ext4"
    assert module_name("kernel/lib/test-module.ko") == "test_module"
    assert plain_path("kernel/fs/ext4/ext4.ko.xz") == "kernel/fs/ext4/ext4.ko"


def test_closure_puts_dependencies_and_pre_softdeps_first(fake_root: Path) -> None:
    index = read_index(fake_root / "lib/modules" / RELEASE)
    order = index.closure(["ext4"])
    assert set(order) == {"ext4", "jbd2", "mbcache", "crc32c_generic"}  # softdep "crc32c" is an alias
    assert order[-1] == "ext4"
    assert index.closure(["fakewifi"]) == ("cfg80211", "fakewifi")
    assert index.closure(["test-module", "nosuch"]) == ("test_module",)


def test_aliases_builtins_and_unknown_names(fake_root: Path) -> None:
    index = read_index(fake_root / "lib/modules" / RELEASE)
    assert index.resolve("fs-ext4") == ["ext4"]
    assert index.unknown(["vfat", "ext4", "crc32c", "nosuch"]) == ["nosuch"]
    assert index.matching(["kernel/fs/*"]) == ["ext4", "jbd2", "mbcache"]


def test_firmware_named_in_modinfo_is_found_or_reported(fake_root: Path) -> None:
    index = read_index(fake_root / "lib/modules" / RELEASE)
    assert index.firmware(["fakewifi", "cfg80211"]) == ["fake/gone.bin", "fake/wifi.bin"]
    dirs = [fake_root / "nowhere", fake_root / "lib/firmware"]
    found, missing = find_firmware(["fake/gone.bin", "fake/wifi.bin"], dirs)
    assert found == {"fake/wifi.bin": fake_root / "lib/firmware/fake/wifi.bin"}
    assert missing == ["fake/gone.bin"]


def test_no_modules_dir_means_no_modules(tmp_path: Path) -> None:
    assert read_index(tmp_path / "lib/modules/x").paths == {}


def test_modules_without_depmod_output_are_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel/a.ko").write_bytes(b"")
    with pytest.raises(UserError, match="depmod"):
        read_index(tmp_path)
