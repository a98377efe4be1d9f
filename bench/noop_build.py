"""a no-op `distkernel build` (nothing changed) vs a no-op `make` in the same build
dir with the same arguments. Goal: <= 2 s and <= 0.2x."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, median_time, ratio, report, sh
from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source, source_key
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.workflows.pipeline import build_id


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    recipe = load_recipe(DEFAULT_RECIPE)
    with tempfile.TemporaryDirectory() as out:
        sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", out)  # make sure the package exists
        ours = median_time(lambda: sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", out), args.repeat)
    work = cache.cache_dir("build") / build_id(recipe, source_key(recipe))
    kb = Kbuild(prepare_source(recipe), work / "obj", get_arch(recipe.kernel.arch), ccache_usable(True))
    make = [*kb.args(), "-j2", "all"]
    env = kb.env()
    sh(*make, env=env)  # settle: the first make after a build may refresh a stamp
    baseline = median_time(lambda: sh(*make, env=env), args.repeat)
    return report(
        "no-op build",
        {
            "distkernel_build_noop_s": round(ours, 3),
            "make_noop_s": round(baseline, 3),
            "ratio": ratio(ours, baseline),
            "goal": "<= 2 s and <= 0.2x",
            "met": ours <= 2 and ours <= 0.2 * baseline,
            "repeat": args.repeat,
            "build_dir": str(Path(work) / "obj"),
        },
    )


if __name__ == "__main__":
    main()
