"""The headers part made during the compile's tail (build/ahead.py): started by the
first of link-vmlinux.sh's links, never before; the writer's own frame when taken;
not taken when a file of the headers tree changed while it was made."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.build.ahead import HeadersAhead
from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.package.format import payload_order
from distkernel.build.payload import header_members
from distkernel.build.source import SourceTree
from distkernel.core.arch import get_arch
from tests.conftest import make_fake_tree

DATE = 1700000000


def _write(top: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)


def fake_build(top: Path) -> Kbuild:
    """A source tree and a build dir holding what header_paths selects."""
    src = make_fake_tree(top / "src")
    _write(
        src,
        {
            "include/linux/a.h": "#define A 1\n",
            "scripts/Makefile.build": "# build\n",
            "arch/x86/Makefile": "# x86\n",
            "arch/x86/include/asm/b.h": "#define B 1\n",
        },
    )
    bd = top / "obj"
    _write(
        bd,
        {
            ".config": "CONFIG_MODULES=y\n",
            "include/generated/autoconf.h": "#define CONFIG_MODULES 1\n",
            "include/config/kernel.release": "6.1.7\n",
            "Module.symvers": "0x1\tsym\tvmlinux\tEXPORT_SYMBOL\t\n",
        },
    )
    return Kbuild(SourceTree(src, "6.1.7", "k", DATE, "test"), bd, get_arch("x86_64"))


def test_made_from_the_first_vmlinux_link_and_the_same_as_the_writers(tmp_path: Path) -> None:
    kb = fake_build(tmp_path)
    with HeadersAhead(kb, tmp_path / "work", DATE) as ahead:
        for line in ("  CC      init/main.o", "  LD      vmlinux.o", "  MODPOST Module.symvers"):
            ahead.on_line(line)
        assert ahead.take() is None  # nothing started before the tail
        ahead.on_line("  LD      .tmp_vmlinux.kallsyms1")
        ahead.on_line("  LD      vmlinux")
        part = ahead.take()
        assert part is not None and part.frame.is_file()
        expected = sorted(header_members(kb, tmp_path / "tools"), key=lambda m: payload_order(m.path))
        assert list(part.members) == expected
        assert "headers/Module.symvers" in part.files
    assert not (tmp_path / "work" / "headers-ahead").exists()  # its files go with the block


def test_not_taken_when_a_file_changed_while_it_was_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = fake_build(tmp_path)
    real = header_members

    def make_writes_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        (kb.build_dir / "Module.symvers").write_text("0x2\tother\tvmlinux\tEXPORT_SYMBOL\t\n")
        return real(*args, **kwargs)

    monkeypatch.setattr("distkernel.build.ahead.header_members", make_writes_meanwhile)
    with HeadersAhead(kb, tmp_path / "work", DATE) as ahead:
        ahead.on_line("  LD      vmlinux")
        assert ahead.take() is None
