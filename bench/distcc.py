"""`distkernel build --distcc` to two distccd daemons on this machine vs a local build of
the same recipe, both from a fresh build dir with ccache's results bypassed
(CCACHE_RECACHE: every object compiles, with the arguments ccache gives a normal build,
so both packages are the cached local one; CCACHE_DISABLE would make a ccache-less
package and store it under the recipe's key). Goals here, where there is no spare CPU to
gain: overhead ratio <= 1.15, and >= 90 % of the compile jobs run remotely. Also prints
what the model in docs/distributed.md needs: per-object compile times (the daemons' own),
the CPU time the client itself spent, and the serial part of the build."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report
from distkernel.build.compile.distribute import Report
from tests.build.compile.daemons import distccds

JOB_TIME = re.compile(r" COMPILE_OK .* time:(\d+)ms ")


def build(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """One fresh build: its JSON, wall seconds, and the CPU seconds it and everything it
    waited for used on this machine (make, cpp, ccache, the distcc client, the linker)."""
    argv = [*DISTKERNEL, "build", str(DEFAULT_RECIPE), "--fresh", "--json", *args]
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed:\n{err[-3000:]}")
        out.seek(0)
        return json.loads(out.read()), wall, usage.ru_utime + usage.ru_stime


def main() -> dict[str, object]:
    env = {**os.environ, "CCACHE_RECACHE": "1"}
    local, local_wall, local_cpu = build([], env)
    with tempfile.TemporaryDirectory() as tmp, distccds(Path(tmp), count=2, limit=2) as daemons:
        hosts = " ".join(d.host for d in daemons)
        dist, dist_wall, dist_cpu = build(["--distcc", hosts], env)
        ended = time.time()
        # The last compile's end, from the daemons' log files: what follows is serial
        # (vmlinux link, modpost, bzImage, packaging).
        last_compile = max(d.log.stat().st_mtime for d in daemons)
        times = [int(ms) / 1000 for d in daemons for ms in JOB_TIME.findall(d.text())]
        per_host = {d.host: d.jobs() for d in daemons}
    tail = max(0.0, ended - last_compile)
    rep = dist["distributed"]
    timings = dist["timings"]
    head = sum(v for k, v in timings.items() if k.split(":")[0] in ("source", "config"))
    identical = Path(dist["package"]).read_bytes() == Path(local["package"]).read_bytes()
    return report(
        "distcc",
        {
            "local_seconds": round(local_wall, 1),
            "distcc_seconds": round(dist_wall, 1),
            "overhead_ratio": ratio(dist_wall, local_wall),
            "goal_ratio": 1.15,
            "remote_share": rep["remote_share"],
            "goal_share": 0.9,
            "remote_jobs": rep["remote_jobs"],
            "local_jobs": rep["local_jobs"],
            "jobs_per_daemon_log": per_host,
            "report_lines": Report.from_json(rep).lines(),
            "identical_package": identical,
            "same_key": dist["key"] == local["key"],
            "model_inputs": {
                "objects_compiled_remotely": len(times),
                "remote_compile_seconds_total": round(sum(times), 1),
                "remote_compile_seconds_mean": round(statistics.mean(times), 3) if times else None,
                "remote_compile_seconds_p95": round(sorted(times)[int(len(times) * 0.95)], 3) if times else None,
                "remote_compile_seconds_max": round(max(times), 3) if times else None,
                "client_cpu_seconds_distcc_build": round(dist_cpu, 1),
                "client_cpu_seconds_local_build": round(local_cpu, 1),
                "serial_head_seconds": round(head, 1),
                "serial_tail_seconds_upper_bound": round(tail, 1),
                "local_timings": local["timings"],
                "distcc_timings": timings,
            },
        },
    )


if __name__ == "__main__":
    main()
