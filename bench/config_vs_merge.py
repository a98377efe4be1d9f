"""`distkernel config` (assemble, olddefconfig, report with explanations) vs the
kernel's own merge_config.sh + `make olddefconfig` on the same inputs, side by side.
Goal: <= 1.5x. Also reports how long parsing the Kconfig tree takes."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, median_time, ratio, report, sh
from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.config.kconfig import parse_tree
from distkernel.build.recipe import load_recipe
from distkernel.build.source import prepare_source
from distkernel.core.arch import get_arch

FRAGMENTS = ["qemu-boot.config", "qemu-uefi.config", "qemu-disk.config"]
# Two values that do not take, so the run includes explanations.
OPTIONS = {"CONFIG_TEST_LKM": "m", "CONFIG_KVM": "y", "CONFIG_SMP": "m"}


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    default = load_recipe(DEFAULT_RECIPE)
    tree = prepare_source(default)
    frags = [DEFAULT_RECIPE.parent / "fragments" / f for f in FRAGMENTS]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipe = folder / "p7.toml"
        listed = ", ".join(f'"{f}"' for f in frags)
        options = "".join(f'{k} = "{v}"\n' for k, v in OPTIONS.items())
        recipe.write_text(
            '[kernel]\nname = "p7-bench"\nsource = "debian:linux-source-6.1"\n\n'
            f'[config]\nbase = "tinyconfig"\nfragments = [{listed}]\n\n[config.options]\n{options}'
        )
        (folder / "options.config").write_text("".join(f"{k}={v}\n" for k, v in OPTIONS.items()))
        ours_cmd: list[str | Path] = [*DISTKERNEL, "config", recipe, "--json"]
        sh(*ours_cmd)  # warm: kconfig tools compiled once in the build dir
        ours = median_time(lambda: sh(*ours_cmd), args.repeat)

        kb = Kbuild(tree, folder / "obj", get_arch("x86_64"))
        make = kb.args()
        env = kb.env()
        merge = tree.path / "scripts/kconfig/merge_config.sh"
        config = kb.build_dir / ".config"

        def baseline() -> None:
            sh(*make, "tinyconfig", env=env)
            sh("sh", merge, "-m", "-O", kb.build_dir, config, *frags, folder / "options.config", env=env, cwd=folder)
            sh(*make, "olddefconfig", env=env)

        baseline()  # warm
        base = median_time(baseline, args.repeat)
    start = time.monotonic()
    parsed = parse_tree(tree.path, "x86")
    parse_s = time.monotonic() - start
    return report(
        "config with explanations",
        {
            "distkernel_config_s": round(ours, 3),
            "merge_config_olddefconfig_s": round(base, 3),
            "ratio": ratio(ours, base),
            "kconfig_parse_s": round(parse_s, 3),
            "kconfig_files": parsed.files,
            "kconfig_symbols": len(parsed.symbols),
            "goal": "<= 1.5x",
            "met": ours <= 1.5 * base,
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
