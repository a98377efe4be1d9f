"""`distkernel test PKG --shell`: a person at a terminal (a tmux pane at 80 columns) gets
a shell in the booted kernel, with a host folder read-only at /host over 9p; a kernel
without 9p, and options a shell cannot honour, are refused before anything boots."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from tests.cli.screen import Pane
from tests.conftest import Built, assert_user_facing_error, cli

BOOT_S = 300  # TCG under load: the prompt can take a while; never a timing assertion


def test_shell_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    package = tmp_path / "some.tar.zst"
    package.write_bytes(b"not read")
    assert_user_facing_error(cli("test", package, "--shell", "--json"), 2, "--shell", "drop --json")
    assert_user_facing_error(cli("test", package, "--shell", "--firmware", "uefi"), 2, "--shell", "--firmware")
    assert_user_facing_error(cli("test", package, "--share", tmp_path), 2, "--share", "--shell")
    run = cli("test", package, "--shell", "--share", tmp_path / "missing")
    assert_user_facing_error(run, 2, "--share", "not a folder")


@pytest.mark.kernel
def test_shell_refuses_a_kernel_without_9p(default_package: Built) -> None:
    run = cli("test", default_package.package, "--shell")
    assert_user_facing_error(run, 2, "CONFIG_9P_FS", "qemu-guest")
    assert "booting" not in run.err  # refused before anything was prepared


def _talk(pane: Pane, release: str, token: str, share: Path) -> None:
    pane.wait_for("[distkernel ", BOOT_S)
    pane.type("cat hello.txt")  # the shell starts in the host folder it was started from
    pane.wait_for(token)
    pane.type("uname -r; touch /host/new; echo write-status-$?")
    shown = pane.wait_for(re.compile(r"write-status-\d"))  # the answer, not the typed line
    assert f"\n{release}\n" in shown.replace("\r", "")
    assert "write-status-1" in shown, shown  # read-only
    pane.type("exit")


@pytest.mark.kernel
@pytest.mark.parametrize("cols", [80, 140])
def test_shell_shows_the_host_folder_read_only(rich_package: Built, tmp_path: Path, cols: int) -> None:
    share = tmp_path / "share"
    share.mkdir()
    token = secrets.token_hex(8)
    (share / "hello.txt").write_text(f"hello from the host {token}\n")
    release = rich_package.metadata["kernel_release"]
    with Pane("test", rich_package.package, "--shell", "--share", share, cols=cols, rows=60, cwd=share) as pane:
        _talk(pane, release, token, share)
        shown = pane.finish(BOOT_S)
    assert shown.code == 0, shown.text
    assert not (share / "new").exists()
    assert any("read-only at /host" in line for line in shown.joined), shown.text
    assert all(len(line) <= cols for line in shown.lines)


@pytest.mark.kernel
def test_shell_boots_a_roots_installed_kernel(rich_package: Built, tmp_path: Path) -> None:
    root, share = tmp_path / "root", tmp_path / "share"
    root.mkdir()
    share.mkdir()
    token = secrets.token_hex(8)
    (share / "hello.txt").write_text(f"{token}\n")
    run = cli("install", rich_package.package, "--root", root, "--layout", "plain", "--initramfs", "builtin")
    assert run.code == 0, run.err
    release = rich_package.metadata["kernel_release"]
    with Pane("test", "--root", root, "--shell", "--share", share, cols=80, rows=60, cwd=share) as pane:
        _talk(pane, release, token, share)
        assert pane.finish(BOOT_S).code == 0
