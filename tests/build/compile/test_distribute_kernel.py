"""Full kernel builds through distcc and icecream (the `extended` tier: each compiles the
whole default kernel, ccache's results bypassed so every object goes out): the package is the one a
local build makes, with the same key; a distcc daemon killed mid-build costs nothing but
a warning; the report's counts are the daemons' own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.build.compile.daemons import Distccd, distccds, icecream
from tests.conftest import DEFAULT_RECIPE, Built, env_with

# A full compile through daemons on a shared 2-core machine took 20-30 min under load
# (plus the default package's first build): past the suite's 1800 s default.
pytestmark = [pytest.mark.extended, pytest.mark.kernel, pytest.mark.timeout(5400)]

KILL_AFTER = 100  # jobs the doomed daemon finishes before it dies


def build(
    args: list[str], env: dict[str, str], during: threading.Thread | None = None, recipe: Path = DEFAULT_RECIPE
) -> dict:  # type: ignore[type-arg]
    argv = [sys.executable, "-m", "distkernel", "build", str(recipe), "--fresh", "--json", *args]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if during:
        during.start()
    out, err = proc.communicate(timeout=3600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)  # type: ignore[no-any-return]


def test_distcc_build_is_the_local_package_and_survives_a_dead_host(default_package: Built, tmp_path: Path) -> None:
    with distccds(tmp_path / "d", count=2) as (d1, d2):
        killed: list[int] = []

        def kill_when_busy(victim: Distccd = d2) -> None:
            deadline = time.monotonic() + 3000
            while time.monotonic() < deadline:
                if victim.jobs() >= KILL_AFTER:
                    victim.kill()
                    killed.append(victim.jobs())
                    return
                time.sleep(0.2)

        # CCACHE_RECACHE: ccache answers no compile from its cache, and hands every one to
        # distcc, with the arguments it gives a local compile (CCACHE_DISABLE would skip
        # its CCACHE_BASEDIR path rewriting too, and so build another package).
        env = env_with(CCACHE_RECACHE="1")
        args = ["--distcc", f"{d1.host} {d2.host}", "--out", str(tmp_path / "out")]
        doc = build(args, env, threading.Thread(target=kill_when_busy))
        assert killed, "the build ended before the second daemon had done its share"
        report = doc["distributed"]
        # The same package, byte for byte, under the same key, as the local build.
        assert doc["key"] == default_package.first_run["key"]
        assert Path(doc["package"]).read_bytes() == default_package.package.read_bytes()
        # Counted on the daemons' side: the living host's log agrees with the report; the
        # killed one finished at least what the report credits it with.
        assert report["per_host"][d1.host] == d1.jobs()
        assert 0 < report["per_host"][d2.host] <= killed[0]
        assert d2.host in report["failed_hosts"]
        assert report["remote_share"] >= 0.9, report
        print(json.dumps(report, indent=1))


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
            env = env_with(CCACHE_RECACHE="1", **net.env())
            doc = build(["--out", str(top / "out"), "-j", "4"], env, recipe=recipe)
            report = doc["distributed"]
            # Counted on the host's side too: every job the client sent, bar a compiler
            # probe or two that fails there (and is then run here), completed on the host.
            sent = sum(report["per_host"].values())
            assert 0.98 * sent <= net.remote_jobs() <= sent, (sent, net.remote_jobs())
            assert report["remote_share"] >= 0.9, report
        assert doc["metadata"]["recipe_sha256"] == default_package.metadata["recipe_sha256"]
        assert Path(doc["package"]).read_bytes() == default_package.package.read_bytes()
        print(json.dumps(report, indent=1))
