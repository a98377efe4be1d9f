"""`distkernel build` from a clean build dir vs the same steps by hand on the same
inputs (tinyconfig, merge_config.sh, olddefconfig, make, modules_install, tar --zstd),
with the same make arguments, environment and ccache, in interleaved pairs (medians;
each side first in every other pair), so that drifts of the machine hit both sides
alike. Goal: ratio <= 1.05 (warm ccache), <= 1.02 cold. Each side's time is split by
stage (ours from the build's own timings, the hand's per step), so a regression names
its stage; `cpu` is each side's CPU seconds (its tools' user + system time): more of it
is more work, the same CPU in a longer wall is waiting."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RECIPE, DISTKERNEL, children_cpu, ratio, report, sh, timed
from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source, source_key
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.workflows.pipeline import build_id


def by_hand(recipe_path: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    """The hand steps; seconds per step (config, compile, package)."""
    recipe = load_recipe(recipe_path)
    source = prepare_source(recipe)
    kb = Kbuild(source, work / "obj", get_arch(recipe.kernel.arch), ccache_usable(recipe.build.ccache))
    make, kenv = [*kb.args(), f"-j{os.cpu_count()}"], {**kb.env(), **env}
    extra = work / "extra.config"
    extra.write_text(
        f'CONFIG_LOCALVERSION="{recipe.kernel.localversion}"\n'
        + "".join(f"{k}={v}\n" for k, v in recipe.config.options.items())
    )
    merge = source.path / "scripts/kconfig/merge_config.sh"

    def config() -> None:
        sh(*make, recipe.config.base, env=kenv)
        sh(merge, "-m", "-O", kb.build_dir, kb.build_dir / ".config", *recipe.config.fragments, extra, env=kenv)
        sh(*make, "olddefconfig", env=kenv)

    def package() -> None:
        stage = work / "stage"
        sh(*make, "modules_install", f"INSTALL_MOD_PATH={stage}", "INSTALL_MOD_STRIP=1", env=kenv)
        for f in (kb.arch.image, "System.map", ".config"):
            shutil.copy(kb.build_dir / f, stage)
        sh("tar", "--zstd", "-cf", work / "hand.tar.zst", "-C", stage, ".", env=kenv)

    return {
        "config": timed(config),
        "compile": timed(lambda: sh(*make, "all", env=kenv)),
        "package": timed(package),
    }


def hand_run(hand_work: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    shutil.rmtree(hand_work, ignore_errors=True)
    hand_work.mkdir(parents=True)
    steps: dict[str, float] = {}
    cpu = children_cpu()
    try:
        wall = timed(lambda: steps.update(by_hand(DEFAULT_RECIPE, hand_work, env)))
        return wall, {**steps, "cpu": children_cpu() - cpu}
    finally:
        shutil.rmtree(hand_work, ignore_errors=True)


def our_run(out: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    doc: dict[str, Any] = {}
    argv: list[str | os.PathLike[str]] = [*DISTKERNEL, "build", DEFAULT_RECIPE, "--fresh", "--json", "--out", out]
    cpu = children_cpu()
    wall = timed(lambda: doc.update(json.loads(sh(*argv, env=env))))
    return wall, {**{k: float(v) for k, v in doc.get("timings", {}).items()}, "cpu": children_cpu() - cpu}


def settled(run: tuple[float, dict[str, float]]) -> tuple[float, dict[str, float]]:
    """A run's result once its writes are on the disk (untimed): both sides' dirty pages
    (and the hand's untimed rm -rf of a build tree) would otherwise be written back during
    the next run, whichever side that is."""
    os.sync()
    return run


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", action="store_true", help="disable ccache on both sides (about 4 min each)")
    ap.add_argument("--pairs", type=int, default=2, help="interleaved pairs (hand, ours); medians")
    args = ap.parse_args()
    env = {**os.environ, **({"CCACHE_DISABLE": "1"} if args.cold else {})}
    recipe = load_recipe(DEFAULT_RECIPE)
    # The hand build sits at the same depth as distkernel's build dir, so the relative
    # paths Kbuild hands the compiler (and so ccache's hits) are the same on both sides.
    hand_work = cache.cache_dir("build") / f"{build_id(recipe, source_key(recipe))}-hand"
    hands: list[dict[str, float]] = []
    ours: list[dict[str, float]] = []
    walls: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.pairs):
            # Each side goes first in every other pair: a build right after another one
            # (a warmer or a throttled machine) is not always the same side's.
            if n % 2:
                wall, stages = settled(our_run(Path(tmp) / f"ours{n}", env))
                hand, steps = settled(hand_run(hand_work, env))
            else:
                hand, steps = settled(hand_run(hand_work, env))
                wall, stages = settled(our_run(Path(tmp) / f"ours{n}", env))
            hands.append(steps)
            ours.append(stages)
            walls.append((hand, wall))
    hand_s = statistics.median(h for h, _ in walls)
    ours_s = statistics.median(o for _, o in walls)

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {k: round(statistics.median(r.get(k, 0.0) for r in runs), 2) for k in runs[0]}

    return report(
        "clean build",
        {
            "distkernel_build_s": round(ours_s, 1),
            "by_hand_s": round(hand_s, 1),
            "ratio": ratio(ours_s, hand_s),
            "goal": "<= 1.02" if args.cold else "<= 1.05",
            "met": ours_s <= (1.02 if args.cold else 1.05) * hand_s,
            "pairs_s": [[round(h, 1), round(o, 1)] for h, o in walls],
            "ccache": "disabled" if args.cold else "enabled on both sides",
            "ours_stages_s": medians(ours),
            "hand_steps_s": medians(hands),
            "note": "distkernel also builds the headers tree and the manifest; the hand steps do not",
        },
    )


if __name__ == "__main__":
    main()
