"""`distkernel build` from a clean build dir vs the same steps by hand on the same
inputs (tinyconfig, merge_config.sh, olddefconfig, make, modules_install, tar --zstd),
with the same make arguments, environment and ccache. Goal: ratio <= 1.05."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source, source_key
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.workflows.pipeline import build_id


def by_hand(recipe_path: Path, work: Path, env: dict[str, str]) -> None:
    recipe = load_recipe(recipe_path)
    source = prepare_source(recipe)
    kb = Kbuild(source, work / "obj", get_arch(recipe.kernel.arch), ccache_usable(recipe.build.ccache))
    make, kenv = [*kb.args(), f"-j{os.cpu_count()}"], {**kb.env(), **env}
    extra = work / "extra.config"
    extra.write_text(
        f'CONFIG_LOCALVERSION="{recipe.kernel.localversion}"\n'
        + "".join(f"{k}={v}\n" for k, v in recipe.config.options.items())
    )
    sh(*make, recipe.config.base, env=kenv)
    merge = source.path / "scripts/kconfig/merge_config.sh"
    sh(merge, "-m", "-O", kb.build_dir, kb.build_dir / ".config", *recipe.config.fragments, extra, env=kenv)
    sh(*make, "olddefconfig", env=kenv)
    sh(*make, "all", env=kenv)
    stage = work / "stage"
    sh(*make, "modules_install", f"INSTALL_MOD_PATH={stage}", "INSTALL_MOD_STRIP=1", env=kenv)
    for f in (kb.arch.image, "System.map", ".config"):
        shutil.copy(kb.build_dir / f, stage)
    sh("tar", "--zstd", "-cf", work / "hand.tar.zst", "-C", stage, ".", env=kenv)


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", action="store_true", help="disable ccache on both sides (about 4 min each)")
    args = ap.parse_args()
    env = {**os.environ, **({"CCACHE_DISABLE": "1"} if args.cold else {})}
    recipe = load_recipe(DEFAULT_RECIPE)
    # The hand build sits at the same depth as distkernel's build dir, so the relative
    # paths Kbuild hands the compiler (and so ccache's hits) are the same on both sides.
    hand_work = cache.cache_dir("build") / f"{build_id(recipe, source_key(recipe))}-hand"
    shutil.rmtree(hand_work, ignore_errors=True)
    hand_work.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            hand = timed(lambda: by_hand(DEFAULT_RECIPE, hand_work, env))
        finally:
            shutil.rmtree(hand_work, ignore_errors=True)
        out = Path(tmp) / "ours"
        doc = {}

        def ours_build() -> None:
            nonlocal doc
            doc = json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--fresh", "--json", "--out", out, env=env))

        ours = timed(ours_build)
    return report(
        "clean build",
        {
            "distkernel_build_s": round(ours, 1),
            "by_hand_s": round(hand, 1),
            "ratio": ratio(ours, hand),
            "goal": "<= 1.05",
            "met": ours <= 1.05 * hand,
            "ccache": "disabled" if args.cold else "enabled on both sides",
            "distkernel_stages_s": doc.get("timings"),
            "note": "distkernel also builds the headers tree and the manifest; the hand steps do not",
        },
    )


if __name__ == "__main__":
    main()
