"""N registered external modules rebuilt for one kernel by `distkernel.target.extmod` (plain
Kbuild modules in one make, every make a client of one jobserver of CORES tokens) vs one
after another with `make -jCORES` each (the dkms way), both from fresh copies and
stripped, against the default package's headers tree. Goal: <= 0.6x."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.target.extmod import registry
from distkernel.target.extmod.builder import Job, build_all
from distkernel.target.extmod.jobserver import default_cores
from distkernel.target.extmod.kernel import Kernel

SOURCE = """// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

int {mod}_part{i}(const char *s)
{{
	char *copy = kstrdup(s, GFP_KERNEL);
	int n = copy ? strlen(copy) : -ENOMEM;

	kfree(copy);
	return n + {i};
}}
EXPORT_SYMBOL_GPL({mod}_part{i});
"""
MAIN = """// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>

static int __init {mod}_init(void) {{ return 0; }}
static void __exit {mod}_exit(void) {{ }}
module_init({mod}_init);
module_exit({mod}_exit);
MODULE_LICENSE("GPL");
"""


def make_sources(top: Path, count: int, files: int) -> list[Path]:
    out = []
    for n in range(count):
        mod = f"p8mod{n}"
        src = top / mod
        src.mkdir(parents=True)
        parts = [f"{mod}_main.o"] + [f"{mod}_p{i}.o" for i in range(files - 1)]
        (src / "Kbuild").write_text(f"obj-m := {mod}.o\n{mod}-y := {' '.join(parts)}\n")
        (src / f"{mod}_main.c").write_text(MAIN.format(mod=mod))
        for i in range(files - 1):
            (src / f"{mod}_p{i}.c").write_text(SOURCE.format(mod=mod, i=i))
        out.append(src)
    return out


def sequential(sources: list[Path], headers: Path, work: Path, cores: int) -> None:
    """What dkms does per module: a fresh build copy, `make -jCORES`, strip."""
    for src in sources:
        copy = work / src.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(src, copy)
        sh("make", f"-j{cores}", "-C", headers, f"M={copy}", "modules")
        for ko in copy.glob("*.ko"):
            sh("strip", "--strip-debug", ko)


def parallel(root: Path, jobs: list[Job], cores: int) -> None:
    failed = [o for o in build_all(root, jobs, cores=cores) if not o.ok]
    if failed:
        raise SystemExit(f"bench: {failed[0].name} failed to build: {failed[0].reason} (log {failed[0].log})")


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modules", type=int, default=6)
    ap.add_argument("--files", type=int, default=3, help="source files per module")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cores = default_cores()
    with tempfile.TemporaryDirectory(prefix="p8-") as tmp:
        top = Path(tmp)
        doc = sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", top / "pkg", "--json")
        package = Path(json.loads(doc)["package"])
        sh("tar", "--zstd", "-xf", package, "-C", top, "headers")
        release = (top / "headers/include/config/kernel.release").read_text().strip()
        headers = top / "headers"
        sources = make_sources(top / "src", args.modules, args.files)
        root = top / "root"
        moddir = root / "lib/modules" / release
        moddir.mkdir(parents=True)
        kernel = Kernel.from_headers(release, headers, moddir)
        jobs = [Job(registry.add(root, s), kernel) for s in sources]
        ours_runs, base_runs = [], []
        for _ in range(args.repeat):  # alternate, so machine noise hits both alike
            ours_runs.append(timed(lambda: parallel(root, jobs, cores)))
            base_runs.append(timed(lambda: sequential(sources, headers, top / "seq", cores)))
    ours, baseline = statistics.median(ours_runs), statistics.median(base_runs)
    return report(
        "external modules",
        {
            "parallel_jobserver_s": round(ours, 2),
            "sequential_dkms_way_s": round(baseline, 2),
            "ratio": ratio(ours, baseline),
            "goal": "<= 0.6x",
            "met": ours <= 0.6 * baseline,
            "modules": args.modules,
            "files_per_module": args.files,
            "cores": cores,
            "loadavg_1m": os.getloadavg()[0],
            "runs_s": {"ours": [round(t, 2) for t in ours_runs], "baseline": [round(t, 2) for t in base_runs]},
        },
    )


if __name__ == "__main__":
    main()
