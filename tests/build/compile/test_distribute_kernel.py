"""Full kernel builds through distcc and icecream (the `extended` tier: each compiles the
whole default kernel, ccache's results bypassed so every object goes out): the package is the one a
local build makes, with the same key; a distcc daemon killed mid-build (with a job in its
hands) costs nothing but a warning; the report's counts are the daemons' own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from distkernel.build.compile.distribute import Report
from distkernel.core import cache
from tests.build.compile.daemons import Distccd, distccds, icecream
from tests.conftest import DEFAULT_RECIPE, Built, env_with

# One full compile of the default kernel through daemons on this machine: about 5-8 min
# on an idle 2-core machine, 20-30 min on a loaded one (plus the default package's first
# build). The build itself is stopped (its whole process group) a little before pytest
# would stop the test, so a timeout leaves no compile running and shows the build's log.
TIMEOUT = 3600
pytestmark = [pytest.mark.extended, pytest.mark.kernel, pytest.mark.timeout(TIMEOUT)]
BUILD_TIMEOUT = TIMEOUT - 120

KILL_AFTER = 100  # jobs the doomed daemon finishes before it dies (with the next one in hand)

# ccache answers no compile from its cache and hands every one to the launcher, with the
# arguments it gives a local compile. Not CCACHE_DISABLE, nor CCACHE_READONLY: on a miss
# both run the compiler with make's own arguments, skipping ccache's CCACHE_BASEDIR path
# rewriting, so `__FILE__` strings, and the package, would differ from a ccache build's.
RECACHE = {"CCACHE_RECACHE": "1"}


def build(
    args: list[str], env: dict[str, str], recipe: Path = DEFAULT_RECIPE, explain: Callable[[], str] = str
) -> dict[str, Any]:
    """`distkernel build --fresh --json`; its document (with the wall time it took).
    EXPLAIN adds what the daemons said to a failure."""
    argv = [sys.executable, "-m", "distkernel", "build", str(recipe), "--fresh", "--json", *args]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the build did not finish in {BUILD_TIMEOUT} s:\n{err[-3000:]}\n{explain()}")
    assert proc.returncode == 0, f"{err[-3000:]}\n{explain()}"
    return json.loads(out)  # type: ignore[no-any-return]


def keep_cached(local: Built) -> None:
    """A `--fresh` build stores its package under its key, the local build's: if it is not
    the local package, put that back, so no later build is answered with a wrong one."""
    good = local.package
    entry = cache.cache_dir("packages") / local.first_run["key"]
    stored = entry / good.name
    if stored.is_file() and stored.read_bytes() != good.read_bytes():
        cache.atomic_copy(good, stored)
        record = {"file": good.name, "sha256": cache.sha256_file(stored)}
        cache.atomic_write_text(entry / "record.json", json.dumps(record, indent=1))


def show(doc: dict[str, Any]) -> None:
    """What the run was: wall time per stage, and the report's lines."""
    report = Report.from_json(doc["distributed"])
    print(json.dumps({"seconds": doc["seconds"], "timings": doc["timings"], **doc["distributed"]}, indent=1))
    print("\n".join(report.lines()))


class Killer(threading.Thread):
    """Kills VICTIM once it has finished KILL_AFTER jobs and holds another one."""

    def __init__(self, victim: Distccd) -> None:
        super().__init__(daemon=True)
        self.victim = victim
        self.done = threading.Event()
        self.killed_after: int | None = None

    def run(self) -> None:
        # Its log is read twice a second until it has done its share; then /proc is
        # watched closely for a compiler under it.
        while not self.done.wait(0.5):
            if self.victim.jobs() >= KILL_AFTER:
                break
        while not self.done.wait(0.02):
            if self.victim.compiling():
                self.victim.kill()
                self.killed_after = self.victim.jobs()
                return

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def test_distcc_build_is_the_local_package_and_survives_a_dead_host(default_package: Built, tmp_path: Path) -> None:
    with distccds(tmp_path / "d", count=2) as (d1, d2):
        args = ["--distcc", f"{d1.host} {d2.host}", "--out", str(tmp_path / "out")]
        with Killer(d2) as killer:
            try:
                doc = build(args, env_with(**RECACHE))
            finally:
                keep_cached(default_package)
        show(doc)
        assert killer.killed_after is not None, "the build ended before the second daemon had done its share"
        report = doc["distributed"]
        # The same package, byte for byte, under the same key, as the local build.
        assert doc["key"] == default_package.first_run["key"]
        assert Path(doc["package"]).read_bytes() == default_package.package.read_bytes()
        # Counted on the daemons' side: the living host's log agrees with the report; the
        # killed one finished at least what the report credits it with.
        assert report["per_host"][d1.host] == d1.jobs()
        assert 0 < report["per_host"][d2.host] <= killer.killed_after
        # It died holding a job: the report names it, and each job it lost was compiled
        # again, on the living host or here.
        assert report["failed_hosts"].get(d2.host, 0) >= 1, report
        assert d1.host not in report["failed_hosts"]
        assert report["retried_jobs"] + report["fell_back_jobs"] >= 1, report
        assert report["remote_share"] >= 0.9, report


def test_icecream_build_is_the_local_package(default_package: Built) -> None:
    # icecream's daemons drop to their own user: their folder must be reachable by it.
    with tempfile.TemporaryDirectory(prefix="distkernel-icecream-") as tmp:
        top = Path(tmp)
        top.chmod(0o755)
        recipes = top / "recipes"
        shutil.copytree(DEFAULT_RECIPE.parent, recipes)
        recipe = recipes / DEFAULT_RECIPE.name
        text = recipe.read_text()
        assert "\n[build]\n" in text
        recipe.write_text(text.replace("\n[build]\n", '\n[build]\ndistribute = "icecream"\n'))
        with icecream(top / "net") as net:
            env = env_with(**RECACHE, **net.env())

            def stalled() -> str:
                # icecream's scheduler gives no job to a host without idle CPU (its
                # load, other processes included, at 1000): on a machine saturated by
                # other work, and with the client's own daemon taking none (-m 0),
                # the jobs wait.
                waits = net.scheduler.text().count("No suitable host found, delaying")
                return f"icecream's scheduler found no host with spare CPU {waits} time(s)"

            doc = build(["--out", str(top / "out"), "-j", "4"], env, recipe=recipe, explain=stalled)
            # The copy's fragments are other files (the config key names them by path): its
            # package has a key of its own, which no later build can ask for again.
            if doc["key"] != default_package.first_run["key"]:
                shutil.rmtree(cache.cache_dir("packages") / doc["key"], ignore_errors=True)
            show(doc)
            report = doc["distributed"]
            # Counted on the host's side too (probes left out on both sides): every job
            # the client credits to the host completed there; a margin for a job that
            # completed there but whose result the client did not take (compiled here).
            sent = sum(report["per_host"].values())
            print(f"icecream host's own count: {net.remote_jobs()} compile jobs")
            assert sent <= net.remote_jobs() <= 1.02 * sent, (sent, net.remote_jobs())
            assert report["remote_share"] >= 0.9, report
        assert doc["metadata"]["recipe_sha256"] == default_package.metadata["recipe_sha256"]
        assert Path(doc["package"]).read_bytes() == default_package.package.read_bytes()
