"""icecream: the toolchain environment made by icecc-create-env once per compiler and kept
in the user cache, and a small real compile through ccache + icecc on a network of its own
(scheduler, the client's daemon, one compile host), counted on the host's side."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from distkernel.build.compile.distribute import Distribution, launched
from distkernel.build.compile.icecc_env import compiler_key, icecc_environment
from tests.build.compile.daemons import icecream
from tests.build.compile.test_distribute import SOURCES, local_objects, make, project


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder icecream's daemons (which drop to their own user) can reach, unlike
    pytest's root-only tmp_path."""
    with tempfile.TemporaryDirectory(prefix="distkernel-icecream-") as tmp:
        Path(tmp).chmod(0o755)
        yield Path(tmp)


def test_icecc_environment_is_made_once_per_compiler() -> None:
    first = icecc_environment("gcc")  # about 15 s the first time on a machine, then cached
    stamp = first.stat().st_mtime_ns
    assert first.name == f"gcc-{compiler_key('gcc')[:16]}.tar.gz"
    assert first.parent.name == "icecc-env"
    assert icecc_environment("gcc") == first and first.stat().st_mtime_ns == stamp
    listing = subprocess.run(["tar", "-tzf", first], capture_output=True, text=True, check=True).stdout
    assert "usr/bin/gcc" in listing and "usr/bin/as" in listing


def test_icecream_compiles_on_its_host(shared_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = project(shared_tmp / "p")
    want = local_objects(src)
    with icecream(shared_tmp / "net") as net:
        for key, value in net.env().items():
            monkeypatch.setenv(key, value)
        with launched(Distribution("icecream"), shared_tmp / "work", "gcc", ccache=True) as launch:
            assert launch.env["CCACHE_PREFIX"].endswith("icecc")
            assert Path(launch.env["ICECC_VERSION"]) == icecc_environment("gcc")
            make(src, {**launch.env, **net.env()}, "ccache gcc", shared_tmp / "ccache")
            # Kbuild's probes (cc-option on /dev/null, as-instr on stdin), a preprocessing
            # call and calls that name no source go through icecc too; none is a compile
            # job of the build.
            env = {**os.environ, "CCACHE_DIR": str(shared_tmp / "ccache"), **launch.env, **net.env()}
            for probe in (
                ["-Werror", "-c", "-x", "c", "/dev/null", "-o", str(shared_tmp / "probe.o")],
                ["-c", "-x", "assembler-with-cpp", "-o", str(shared_tmp / "probe2.o"), "-"],
                ["-E", "-P", "-x", "c", "/dev/null"],
                ["-print-file-name=include"],
                ["--version"],
            ):
                subprocess.run(["ccache", "gcc", *probe], env=env, input=b"", capture_output=True, check=True)
            assert "/dev/null" in launch.log.read_text()
        report = launch.report()
        assert report.remote_jobs == net.remote_jobs() > 0, (report, net.host.text()[-2000:])
        assert report.remote_jobs + report.local == SOURCES
    for stem, data in want.items():
        assert (src / f"{stem}.o").read_bytes() == data, stem
    assert os.path.isfile(report.log or "")
