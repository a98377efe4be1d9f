"""Small parts: the test init's shell, the qemu profile data, PVH extraction from a
bzImage-shaped file, the JUnit report."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distkernel.build.package.reader import read_metadata
from distkernel.core.errors import UserError
from distkernel.workflows.boottest.junit import junit_xml
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.pvh import has_pvh_note, payload_elf
from distkernel.workflows.boottest.result import Attempt, BootResult
from distkernel.workflows.boottest.run import BootOptions, check_options, package_test_modules
from distkernel.workflows.boottest.testinit import MARKER, init_script
from tests.build.trust.helpers import tiny_package


def test_init_script_parses_and_holds_no_marker_line() -> None:
    script = init_script("6.1.0-x", ("test_module", "virtio-blk"), "abc123")
    busybox = shutil.which("busybox") or "/bin/busybox"
    subprocess.run([busybox, "sh", "-n", "-c", script], check=True)
    assert f"{MARKER} abc123" not in script  # only its output has the marker line
    assert "virtio-blk" in script and "'6.1.0-x'" not in script  # a plain word needs no quotes
    with pytest.raises(ValueError):
        init_script("6.1", ("bad;rm -rf /",), "t")


def test_profiles_are_data() -> None:
    x86 = profile("x86_64")
    assert x86.binary == "qemu-system-x86_64" and x86.uefi is not None and x86.pvh
    argv = x86.direct_argv("tcg", Path("k"), Path("i"), x86.kernel_cmdline("quiet"))
    assert argv[:3] == ["qemu-system-x86_64", "-accel", "tcg"]
    assert argv[argv.index("-append") + 1] == "console=ttyS0 panic=-1 quiet"
    assert "-serial" in argv and "-no-reboot" in argv
    assert profile("arm64").console == "ttyAMA0"
    with pytest.raises(UserError, match="no qemu profile for arch 'mips'"):
        profile("mips")


def _elf_with_note(note_type: int) -> bytes:
    """A minimal ELF64 with one PT_NOTE program header holding one "Xen" note."""
    note = struct.pack("<III", 4, 8, note_type) + b"Xen\0" + struct.pack("<Q", 0x1000000)
    phoff, ph = 64, struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    header = (
        b"\x7fELF"
        + bytes([2, 1, 1])
        + bytes(9)
        + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, phoff, 0, 0, 64, 56, 1, 0, 0, 0)
    )
    return header + ph + note


def _bzimage(payload: bytes) -> bytes:
    setup = bytearray(5 * 512)  # setup_sects = 4
    setup[0x1F1] = 4
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x20F)
    struct.pack_into("<II", setup, 0x248, 0x100, len(payload))
    return bytes(setup) + bytes(0x100) + payload


def test_pvh_elf_is_found_inside_a_bzimage() -> None:
    elf = _elf_with_note(18)
    assert payload_elf(_bzimage(gzip.compress(elf))) == elf
    assert has_pvh_note(elf)
    assert not has_pvh_note(_elf_with_note(17))
    assert payload_elf(b"MZ" + bytes(4096)) is None  # not a bzImage
    assert payload_elf(_bzimage(b"\x02\x21\x4c\x18" + bytes(64))) is None  # lz4: not readable here


def _result(outcomes: list[str]) -> BootResult:
    attempts = tuple(
        Attempt(n + 1, o, "" if o == "pass" else f"{o} line", "tcg", 2.0, 1.5 if o == "pass" else None, None, 0)
        for n, o in enumerate(outcomes)
    )
    return BootResult(Path("p.tar.zst"), "k", "6.1", "x86_64", "bios", "plain", "pvh", "tcg", "r", (), attempts, 1.0)


def test_junit_report() -> None:
    suite = ET.fromstring(junit_xml([_result(["timeout", "pass"]), _result(["panic", "panic"])]))
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    flaky, failed = suite.findall("testcase")
    assert flaky.find("failure") is None and flaky.find("flakyFailure") is not None
    failure = failed.find("failure")
    assert failure is not None and failure.get("type") == "panic"
    assert failure.get("message") == "panic: panic line"
    assert failed.find("rerunFailure") is not None
    assert _result(["qemu error"]).exit_code == 3 and _result(["oops"]).exit_code == 1


def test_bad_options_are_user_errors() -> None:
    assert check_options(BootOptions()) == "plain"
    assert check_options(BootOptions(firmware="uefi")) == "bls"
    with pytest.raises(UserError, match="--layout grub: not bootable with --firmware bios; use --firmware uefi"):
        check_options(BootOptions(layout="grub"))
    with pytest.raises(UserError, match="not a module name"):
        check_options(BootOptions(modules=("x; reboot",)))


def test_package_test_modules_are_checked_before_they_reach_the_init(tmp_path: Path) -> None:
    pkg = tiny_package(tmp_path)
    meta = read_metadata(pkg)
    assert package_test_modules(pkg, dataclasses.replace(meta, extra={})) == ()
    ok = dataclasses.replace(meta, extra={"test": {"modules": ["test_module", "a-b"]}})
    assert package_test_modules(pkg, ok) == ("test_module", "a-b")
    for bad in ({"modules": ["x; reboot"]}, {"modules": "test_module"}, ["test_module"]):
        with pytest.raises(UserError, match="fix the recipe's \\[test\\] modules"):
            package_test_modules(pkg, dataclasses.replace(meta, extra={"test": bad}))
