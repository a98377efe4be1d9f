"""`distkernel test --root R [RELEASE]`: the kernel installed in a root booted with the
root's own initramfs and external modules, which --module loads; and the boot's progress
on a terminal (a pseudo-terminal at 80 columns), nothing of it in --json output."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import DATA, Built, assert_user_facing_error, cli

pytestmark = pytest.mark.kernel

TIMEOUT = "120"


@pytest.mark.parametrize("layout", ["plain", "uki"])
def test_root_boot_loads_the_roots_external_modules(default_package: Built, tmp_path: Path, layout: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    release = default_package.metadata["kernel_release"]
    assert cli("install", default_package.package, "--root", root, "--layout", layout).code == 0
    run = cli("modules", "add", DATA / "extmod" / "dkms", "--root", root)
    assert run.code == 0, run.err
    run = cli(
        "test", "--root", root, "--module", "dk_dkms", "--module", "dk_dkms_extra", "--json", "--timeout", TIMEOUT
    )
    assert run.code == 0, run.err
    doc = run.json()
    assert (doc["release"], doc["layout"], doc["modules"]) == (release, layout, ["dk_dkms", "dk_dkms_extra"])
    assert run.err == ""  # no progress without a terminal
    run = cli("test", "--root", root, release, "--module", "no_such_module")
    assert_user_facing_error(run, 2, "--module no_such_module", f"kernel {release} in", "dk_dkms")
    run = cli("test", "--root", root, "9.9.9")
    assert_user_facing_error(run, 2, "9.9.9", f"installed: {release}")


@pytest.mark.parametrize(("layout", "loader"), [("bls", "systemd-boot"), ("uki", "systemd-boot"), ("grub", "GRUB")])
def test_root_boot_through_the_layouts_boot_loader(
    default_package: Built, tmp_path: Path, layout: str, loader: str
) -> None:
    root = tmp_path / "root"
    (root / "efi/EFI").mkdir(parents=True)  # the root's ESP
    assert cli("install", default_package.package, "--root", root, "--layout", layout).code == 0
    assert cli("modules", "add", DATA / "extmod" / "dkms", "--root", root).code == 0
    before = sorted((p.relative_to(root), p.read_bytes()) for p in root.rglob("*") if p.is_file())
    run = cli("test", "--root", root, "--firmware", "uefi", "--module", "dk_dkms", "--json", "--timeout", TIMEOUT)
    assert run.code == 0, run.err
    doc = run.json()
    assert (doc["layout"], doc["boot"]) == (layout, f"OVMF + {loader}")
    assert sorted((p.relative_to(root), p.read_bytes()) for p in root.rglob("*") if p.is_file()) == before
    run = cli("test", "--root", root, "--firmware", "uefi", "--layout", "plain" if layout != "plain" else "bls")
    assert_user_facing_error(run, 2, "--layout", f"installed with {layout}", "drop --layout")


def _on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run ARGV with stderr on an 80-column pseudo-terminal: (status, stdout, the screen bytes)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    screen = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        screen += chunk
    out = proc.stdout.read() if proc.stdout else b""
    os.close(leader)
    return proc.wait(), out.decode(), screen.decode(errors="replace")


def test_boot_progress_on_a_terminal(default_package: Built) -> None:
    base = [sys.executable, "-m", "distkernel", "test", str(default_package.package), "--timeout", TIMEOUT]
    code, out, screen = _on_a_terminal(base)
    assert code == 0, (out, screen)
    assert out.startswith("PASS ")
    for phase in ("boot: firmware", "boot: kernel", "boot: marker"):
        assert phase in screen, screen
    assert f"/{TIMEOUT} s" in screen
    code, out, screen = _on_a_terminal([*base, "--json"])
    assert code == 0 and out.lstrip().startswith("{")
    assert "boot:" not in screen
