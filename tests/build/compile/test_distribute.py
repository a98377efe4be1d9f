"""Distributed compiles (build/compile/distribute.py) against real distccd daemons on
127.0.0.1: the environment the Kbuild driver gets, small real compiles through ccache,
what the report counts against the daemons' own logs, a dead host, pump mode's probe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from distkernel.build.compile.distribute import Distribution, Report, choose, launched, parse_hosts
from distkernel.build.recipe_model import BuildSpec
from distkernel.core.errors import UserError
from tests.build.compile.daemons import distccds, free_port

SOURCES = 8
MAKEFILE = "OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n"


def project(folder: Path) -> Path:
    """A small C project: SOURCES files, one object each."""
    folder.mkdir(parents=True)
    for n in range(SOURCES):
        (folder / f"f{n}.c").write_text(f'const char *f{n}(void) {{ return __FILE__ "{n}"; }}\n')
    (folder / "Makefile").write_text(MAKEFILE)
    return folder


def make(folder: Path, env: dict[str, str], cc: str, ccache_dir: Path) -> None:
    full = {**os.environ, "CCACHE_DIR": str(ccache_dir), "CCACHE_NOHASHDIR": "true", **env}
    subprocess.run(["make", "-s", "-B", "-j4", f"CC={cc}"], cwd=folder, env=full, check=True)


def local_objects(folder: Path) -> dict[str, bytes]:
    out = {}
    for c in sorted(folder.glob("*.c")):
        obj = folder / f"{c.stem}.local"
        subprocess.run(["gcc", "-O2", "-c", c.name, "-o", obj.name], cwd=folder, check=True)
        out[c.stem] = obj.read_bytes()
    return out


def test_distcc_without_hosts_is_refused() -> None:
    with pytest.raises(UserError, match=r"no hosts: set build.hosts in the recipe, DISTCC_HOSTS, or give"):
        choose(BuildSpec(distribute="distcc"), {})


def test_hosts_come_from_the_recipe_before_distcc_hosts() -> None:
    spec = BuildSpec(distribute="distcc", hosts=("a/4",))
    assert choose(spec, {"DISTCC_HOSTS": "b/8"}) == Distribution("distcc", ("a/4",), "build.hosts")
    from_env = choose(BuildSpec(distribute="distcc"), {"DISTCC_HOSTS": " b/8  c:3633 "})
    assert from_env == Distribution("distcc", ("b/8", "c:3633"), "DISTCC_HOSTS")
    assert choose(BuildSpec(), {"DISTCC_HOSTS": "b/8"}) is None  # local unless asked


def test_bad_distcc_hosts_environment_is_refused() -> None:
    with pytest.raises(UserError, match=r"^DISTCC_HOSTS: 'user@h' is not a distcc host"):
        choose(BuildSpec(distribute="distcc"), {"DISTCC_HOSTS": "ok user@h"})
    with pytest.raises(UserError, match=r"^--distcc: 'h:70000' is not a distcc host"):
        parse_hosts("h:70000", "--distcc")


def test_jobs_follow_distcc_slots() -> None:
    assert Distribution("distcc", ("127.0.0.1:1/3", "localhost/5", "h2")).slots() == 3 + 5 + 4
    assert Distribution("icecream").slots() == 0


def test_distcc_behind_ccache_compiles_on_both_daemons(tmp_path: Path) -> None:
    src = project(tmp_path / "p")
    want = local_objects(src)
    with distccds(tmp_path / "d") as (d1, d2):
        dist = Distribution("distcc", (d1.host, d2.host))
        with launched(dist, tmp_path / "work", "gcc", ccache=True) as launch:
            assert launch.env["CCACHE_PREFIX"].endswith("distcc")
            assert launch.env["DISTCC_HOSTS"] == f"{d1.host} {d2.host}"
            make(src, launch.env, "ccache gcc", tmp_path / "ccache")
            # A compiler probe the way Kbuild's cc-option runs one: distcc keeps it here,
            # and it is no compile job of the build.
            probe = ["ccache", "gcc", "-Werror", "-c", "-x", "c", "/dev/null", "-o", str(tmp_path / "probe.o")]
            subprocess.run(probe, env={**os.environ, "CCACHE_DIR": str(tmp_path / "ccache"), **launch.env}, check=True)
            assert "compile (null) on localhost completed ok" in launch.log.read_text()
        report = launch.report()
        assert report.remote == {d1.host: d1.jobs(), d2.host: d2.jobs()}
        assert d1.jobs() > 0 and d2.jobs() > 0  # -j4 over two hosts of two slots each
        assert report.remote_jobs == SOURCES and report.local == 0 and report.failed == {}
        assert report.share == 1.0
        for stem, data in want.items():  # same objects as a local compile
            assert (src / f"{stem}.o").read_bytes() == data, stem
        # A second build is answered by ccache: nothing leaves the machine.
        before = d1.jobs() + d2.jobs()
        with launched(dist, tmp_path / "work", "gcc", ccache=True) as launch:
            make(src, launch.env, "ccache gcc", tmp_path / "ccache")
        assert launch.report().remote_jobs == 0 and d1.jobs() + d2.jobs() == before


def test_distcc_without_ccache_goes_first_on_path(tmp_path: Path) -> None:
    src = project(tmp_path / "p")
    with distccds(tmp_path / "d", count=1) as (d1,):
        with launched(Distribution("distcc", (d1.host,)), tmp_path / "work", "gcc", ccache=False) as launch:
            assert "CCACHE_PREFIX" not in launch.env
            assert os.readlink(tmp_path / "work" / "distcc" / "bin" / "gcc").endswith("distcc")
            make(src, launch.env, "gcc", tmp_path / "ccache")  # make's CC is still plain gcc
        assert launch.report().remote == {d1.host: SOURCES} == {d1.host: d1.jobs()}


def test_dead_host_falls_back_to_this_machine_and_says_so(tmp_path: Path) -> None:
    src = project(tmp_path / "p")
    want = local_objects(src)
    dead = f"127.0.0.1:{free_port()}/2"  # nothing listens there
    with distccds(tmp_path / "d", count=1) as (d1,):
        with launched(Distribution("distcc", (dead, d1.host)), tmp_path / "work", "gcc", ccache=True) as launch:
            make(src, launch.env, "ccache gcc", tmp_path / "ccache")
        report = launch.report()
    assert report.failed.get(dead, 0) >= 1  # distcc could not connect: its jobs went to the live host
    assert report.local == report.fell_back  # anything compiled here was handed back by a failure
    assert report.remote_jobs + report.local == SOURCES
    assert any(line.startswith(f"warning: host {dead} failed") for line in report.lines())
    assert Report.from_json(report.to_json()) == report  # what `build --json` prints reads back
    for stem, data in want.items():
        assert (src / f"{stem}.o").read_bytes() == data, stem


def test_pump_mode_is_probed_before_it_is_trusted(tmp_path: Path) -> None:
    """Hosts that allow pump mode get it only when distcc-pump's include server gives
    byte-identical objects here; else the build runs in plain mode and says why."""
    src = project(tmp_path / "p")
    with distccds(tmp_path / "d", count=1) as (d1,):
        host = f"{d1.host},lzo,cpp"
        with launched(Distribution("distcc", (host,)), tmp_path / "work", "gcc", ccache=True) as launch:
            make(src, launch.env, "ccache gcc", tmp_path / "ccache")
        report = launch.report()
    assert report.pump or any("plain mode" in n for n in report.notes), report.notes
    assert report.remote == {host: SOURCES}
