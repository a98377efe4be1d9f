"""The control data an exported .deb carries about its files, on small trees: DEBIAN/md5sums
as `md5sum` writes it, Installed-Size counted as dpkg-gencontrol counts it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from distkernel.workflows.export.deb import _scan


def _tree(top: Path) -> Path:
    (top / "boot").mkdir(parents=True)
    (top / "lib/modules/6.1.7/kernel").mkdir(parents=True)
    (top / "boot/vmlinuz-6.1.7").write_bytes(b"\x00" * 1025)  # 2 KiB
    (top / "boot/config-6.1.7").write_text("CONFIG_64BIT=y\n")  # 1 KiB
    (top / "lib/modules/6.1.7/kernel/a.ko").write_bytes(b"\x7fELF" + b"a" * 2044)  # 2 KiB
    (top / "lib/modules/6.1.7/modules.order").write_bytes(b"")  # 0 KiB
    (top / "lib/modules/6.1.7/build").symlink_to("/usr/src/linux-headers-6.1.7")  # 1, to a folder elsewhere
    (top / "boot/vmlinuz").symlink_to("vmlinuz-6.1.7")  # 1
    return top


def test_md5sums_lists_every_regular_file_by_path_as_md5sum_does(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    files = sorted(
        os.path.relpath(os.path.join(top, name), tree)
        for top, _, names in os.walk(tree)
        for name in names
        if not os.path.islink(os.path.join(top, name))
    )
    expected = subprocess.run(["md5sum", *files], cwd=tree, capture_output=True, text=True, check=True).stdout
    sums, _ = _scan(tree)
    assert sums == expected
    assert "vmlinuz  " not in sums and "build" not in sums  # symlinks have no sum


def test_installed_size_rounds_each_file_up_to_a_kib_and_counts_folders_and_symlinks_as_one(tmp_path: Path) -> None:
    _, size = _scan(_tree(tmp_path / "tree"))
    files = 2 + 1 + 2 + 0
    folders = 6  # the root, boot, lib, lib/modules, lib/modules/6.1.7, .../kernel
    symlinks = 2
    assert size == files + folders + symlinks
