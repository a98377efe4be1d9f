"""Our newc writer against the real cpio: listing, extraction, and stable bytes."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from distkernel.target.initramfs.cpio import Archive, members


def sample(order: list[str]) -> Archive:
    a = Archive()
    adders = {
        "bin/busybox": lambda: a.file("bin/busybox", b"\x7fELF" + bytes(range(256)) * 3, 0o755),
        "init": lambda: a.file("init", b"#!/bin/busybox sh\necho hi\n", 0o755),
        "etc/empty": lambda: a.file("etc/empty", b""),
        "bin/sh": lambda: a.symlink("bin/sh", "busybox"),
        "dev/console": lambda: a.chardev("dev/console", 5, 1),
        "a-b/c": lambda: a.file("a-b/c", b"odd"),
        "a/b/c/d.ko": lambda: a.file("a/b/c/d.ko", b"x" * 5),
    }
    for key in order:
        adders[key]()
    return a


KEYS = ["bin/busybox", "init", "etc/empty", "bin/sh", "dev/console", "a-b/c", "a/b/c/d.ko"]


def test_real_cpio_lists_parents_first_with_fixed_owner_and_mtime(tmp_path: Path) -> None:
    data = sample(KEYS).to_bytes()
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=data, capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] if " -> " not in line else line.split()[-3] for line in listing.splitlines()]
    assert names == ["a", "a/b", "a/b/c", "a/b/c/d.ko", "a-b", "a-b/c", "bin", "bin/busybox", "bin/sh",
                     "dev", "dev/console", "etc", "etc/empty", "init"]  # fmt: skip
    for line in listing.splitlines():
        assert " root " in line and "1970" in line, line
    assert [n for n, _, _ in members(data)] == names


def test_real_cpio_extracts_the_same_content_and_modes(tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=sample(KEYS).to_bytes(),
                   cwd=out, check=True)  # fmt: skip
    assert (out / "bin/busybox").read_bytes() == b"\x7fELF" + bytes(range(256)) * 3
    assert stat.S_IMODE((out / "init").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "etc/empty").stat().st_mode) == 0o644
    assert os.readlink(out / "bin/sh") == "busybox"
    console = (out / "dev/console").stat()
    assert stat.S_ISCHR(console.st_mode) and os.major(console.st_rdev) == 5 and os.minor(console.st_rdev) == 1
    assert (out / "a/b/c/d.ko").read_bytes() == b"xxxxx"
    assert (out / "init").stat().st_mtime == 0
    assert all((out / p).stat().st_nlink == 1 for p in ("bin/busybox", "init", "a-b/c"))


def test_bytes_do_not_depend_on_insertion_order() -> None:
    assert sample(KEYS).to_bytes() == sample(list(reversed(KEYS))).to_bytes()
    assert len(sample(KEYS).to_bytes()) % 4 == 0


def test_paths_that_escape_are_refused() -> None:
    a = Archive()
    for bad in ("../x", "a/../../x", "/"):
        try:
            a.file(bad, b"")
        except ValueError:
            continue
        raise AssertionError(bad)
