"""The dracut backend's failure path (fast): a ToolError naming dracut's log, nothing written.
A real dracut image is built from the default package in test_kernel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from distkernel.core.errors import ToolError
from distkernel.core.progress import reporting
from distkernel.target.initramfs import InitramfsSpec, make_initramfs
from tests.core.test_progress import Recorder

from .conftest import RELEASE, MakeConfig


def test_dracut_failure_is_a_tool_error_with_its_log(
    fake_root: Path, config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTKERNEL_CACHE", str(tmp_path / "cache"))
    # dracut refuses a modules dir whose name is not the release it builds for.
    spec = InitramfsSpec("6.1.0-other", fake_root / "lib/modules" / RELEASE, config("CONFIG_RD_GZIP=y"))
    shown = Recorder()  # the renderer the CLI makes current: dracut shows it is running
    with reporting(shown), pytest.raises(ToolError, match="dracut failed") as info:
        make_initramfs("dracut", spec, tmp_path / "out/initrd.img", root=fake_root)
    assert shown.stages == ["dracut"]
    assert info.value.log is not None and "does not match" in info.value.log.read_text()
    assert list((tmp_path / "out").iterdir()) == []
