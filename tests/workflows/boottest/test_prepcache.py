"""A boot test's preparation kept by content: the second test of the same bytes with the
same options starts qemu from the kept files; other options, other bytes or a broken
entry prepare again; GRUB's menu never waits in a test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from distkernel.workflows.boottest.prepcache import KEEP, prune
from tests.conftest import Built, cli, env_with

pytestmark = pytest.mark.kernel


def boot(pkg: Path, cache: Path, *args: str) -> dict:  # type: ignore[type-arg]
    run = cli("test", pkg, "--json", "--timeout", "120", *args, env=env_with(DISTKERNEL_CACHE=str(cache)))
    assert run.code == 0 and "Traceback" not in run.err, (run.err, run.out)
    doc: dict = json.loads(run.out)  # type: ignore[type-arg]
    assert doc["passed"], doc
    return doc


def entries(cache: Path) -> list[Path]:
    return [p for p in (cache / "boottest" / "prepared").iterdir() if not p.name.startswith(".")]


def test_second_test_of_the_same_bytes_starts_from_the_kept_preparation(default_package: Built, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = boot(default_package.package, cache)
    again = boot(default_package.package, cache)
    assert (first["prepare_cached"], again["prepare_cached"]) == (False, True)
    assert again["boot"] == first["boot"] == "pvh"
    # Another command line is another preparation (the kept one stays).
    other = boot(default_package.package, cache, "--append", "quiet")
    assert other["prepare_cached"] is False and len(entries(cache)) == 2
    # The same bytes under another name are the same preparation.
    copy = tmp_path / "elsewhere.tar.zst"
    shutil.copyfile(default_package.package, copy)
    assert boot(copy, cache)["prepare_cached"] is True


def test_a_broken_kept_entry_is_prepared_again(default_package: Built, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    boot(default_package.package, cache)
    (entry,) = entries(cache)
    (entry / "prepared.json").write_text("{not json")
    redone = boot(default_package.package, cache)
    assert redone["prepare_cached"] is False  # the broken entry stays a miss, the test still passes
    (entry,) = entries(cache)
    (entry / "initrd").unlink()
    assert boot(default_package.package, cache)["prepare_cached"] is False


def test_the_token_lives_only_in_the_kept_initramfs(default_package: Built, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    boot(default_package.package, cache)
    (entry,) = entries(cache)
    token = json.loads((entry / "prepared.json").read_text())["token"]
    assert len(token) == 16
    # The kernel echoes its command line: the token must not be on it.
    assert token not in json.loads((entry / "prepared.json").read_text())["cmdline"]


def test_grub_in_a_test_boots_with_no_menu_timeout(default_package: Built, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    boot(default_package.package, cache, "--firmware", "uefi", "--layout", "grub")
    (entry,) = entries(cache)
    cfg = subprocess.run(
        ["mtype", "-i", f"{entry / 'disk'}@@1M", "::/boot/grub/grub.cfg"], capture_output=True, text=True, check=True
    ).stdout
    assert "set timeout=0" in cfg and "set timeout=3" not in cfg


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "prepared"
    for n in range(KEEP + 2):
        (folder / f"e{n}").mkdir(parents=True)
        os.utime(folder / f"e{n}", (1000 + n, 1000 + n))  # e0 is the least recently used
    (folder / ".e9.stage-1").mkdir()  # another test's entry being written: not counted, kept
    prune(folder)
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == sorted([".e9.stage-1", *(f"e{n}" for n in range(2, KEEP + 2))])
