"""Another arch's userspace for its boot tests comes from Debian's archive for that arch
(cached), never from the host: the busybox a scratch root gets is the target's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from distkernel.core.arch import get_arch
from distkernel.core.errors import ToolError
from distkernel.target.initramfs.elf import EM_NAMES, Elf
from distkernel.workflows.boottest.foreign import debian_tree, populate_root


def test_the_scratch_root_gets_the_target_arch_busybox(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    populate_root(root, get_arch("arm64"), ("busybox-static",))
    elf = Elf.parse((root / "bin" / "busybox").read_bytes())
    assert elf is not None and EM_NAMES[elf.machine] == "arm64" and elf.is_static


def test_a_native_arch_keeps_the_host_tools(tmp_path: Path) -> None:
    host = next(get_arch(a) for a in ("x86_64", "arm64", "ppc64le", "i386") if get_arch(a).native)
    populate_root(tmp_path, host, ("busybox-static",))
    assert list(tmp_path.iterdir()) == []


def test_an_architecture_apt_does_not_know_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTKERNEL_CACHE", str(tmp_path / "cache"))
    unknown = dataclasses.replace(get_arch("arm64"), debian="nosucharch")
    with pytest.raises(ToolError) as e:
        debian_tree(unknown, ("busybox-static",))
    assert "apt-get download busybox-static:nosucharch failed" in str(e.value)
    assert "dpkg --add-architecture nosucharch && apt-get update" in str(e.value)
