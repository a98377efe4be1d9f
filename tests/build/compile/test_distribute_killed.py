"""A distcc host killed in the middle of a real multi-object compile (a daemon with a
compiler running for one of the build's jobs): the build still succeeds, with the same
objects, and the report names the dead host and where its jobs went instead: another
host, or this machine when no host is left."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from distkernel.build.compile.distribute import Distribution, Launch, launched
from tests.build.compile.daemons import Distccd, distccds
from tests.build.compile.test_distribute import local_objects

FILES = 12
FUNCTIONS = 120  # about 0.3 s of cc1 per file on an idle core: long enough to be caught mid-job
MAKEFILE = "OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n"


def slow_project(folder: Path) -> Path:
    """FILES C files, each slow enough to compile that a daemon can die holding one."""
    folder.mkdir(parents=True)
    for n in range(FILES):
        body = "".join(
            f"unsigned g{n}_{i}(unsigned x) {{\n"
            f"    for (int k = 0; k < {i + 3}; k++) x = x * {2 * i + 3}u + (x >> {i % 7 + 1}) + k;\n"
            "    return x;\n}\n"
            for i in range(FUNCTIONS)
        )
        (folder / f"f{n}.c").write_text(body)
    (folder / "Makefile").write_text(MAKEFILE)
    return folder


def make_killing(src: Path, launch: Launch, ccache_dir: Path, victim: Distccd) -> None:
    """`make -j4` through the launcher; VICTIM is killed as soon as a compiler runs
    under it, that is with a job of this build in its hands."""
    env = {**os.environ, "CCACHE_DIR": str(ccache_dir), "CCACHE_NOHASHDIR": "true", **launch.env}
    proc = subprocess.Popen(["make", "-s", "-B", "-j4", "CC=ccache gcc"], cwd=src, env=env)
    try:
        while proc.poll() is None and not victim.compiling():
            time.sleep(0.02)
        assert proc.poll() is None, "the build ended before the victim daemon took a job"
        victim.kill()
        assert proc.wait(timeout=600) == 0, "the build failed after a host died"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_host_mid_compile_its_jobs_go_to_the_other_host_and_the_report_says_so(tmp_path: Path) -> None:
    src = slow_project(tmp_path / "p")
    with distccds(tmp_path / "d") as (d1, d2):
        with launched(Distribution("distcc", (d1.host, d2.host)), tmp_path / "work", "gcc", ccache=True) as launch:
            make_killing(src, launch, tmp_path / "ccache", d2)
        report = launch.report()
        # Counted on the daemons' side: the living host's log agrees with the report; the
        # dead one finished at least what the report credits it with.
        assert report.remote.get(d1.host, 0) == d1.jobs() > 0
        assert report.remote.get(d2.host, 0) <= d2.jobs()
    assert report.failed.get(d2.host, 0) >= 1, report  # it died holding at least one job
    assert d1.host not in report.failed
    # Every job that died with the host was compiled again: on the other host, or here.
    assert report.retried + report.fell_back >= report.failed[d2.host]
    assert report.remote_jobs + report.local == FILES
    lines = report.lines()
    assert any(line.startswith(f"warning: host {d2.host} failed ") for line in lines), lines
    if report.retried:
        assert any("were compiled on another host" in line for line in lines), lines
    for stem, data in local_objects(src).items():  # the same objects as a local compile
        assert (src / f"{stem}.o").read_bytes() == data, stem


def test_killed_only_host_mid_compile_falls_back_to_this_machine_and_says_so(tmp_path: Path) -> None:
    src = slow_project(tmp_path / "p")
    with distccds(tmp_path / "d", count=1) as (d1,):
        with launched(Distribution("distcc", (d1.host,)), tmp_path / "work", "gcc", ccache=True) as launch:
            make_killing(src, launch, tmp_path / "ccache", d1)
        report = launch.report()
        assert report.remote.get(d1.host, 0) <= d1.jobs()
    assert report.failed.get(d1.host, 0) >= 1, report
    # With no host left, whatever the dead host did not finish was compiled here.
    assert report.fell_back == report.local >= report.failed[d1.host]
    assert report.remote_jobs + report.local == FILES
    lines = report.lines()
    assert any(line.startswith(f"warning: host {d1.host} failed ") for line in lines), lines
    assert f"warning: {report.fell_back} compile job(s) fell back to this machine after a host failed" in lines
    for n in range(FILES):
        assert (src / f"f{n}.o").stat().st_size > 0
