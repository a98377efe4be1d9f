"""packaging a finished build (modules_install, headers, manifest, zstd) vs the
kernel's own `make bindeb-pkg` on the same finished build, with the same make arguments:
time (goal <= 0.2x) and the size of our one package vs linux-image + linux-headers .debs
(goal <= 0.8x)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.build.compile.kernel import BuildResult
from distkernel.build.recipe import load_recipe
from distkernel.build.source import source_key
from distkernel.build.toolchain import toolchain_versions
from distkernel.core import cache
from distkernel.workflows.pipeline import build_id, configure, make_package


def main() -> dict[str, object]:
    recipe = load_recipe(DEFAULT_RECIPE)
    with tempfile.TemporaryDirectory() as tmp:
        sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp)  # a finished build dir
        work = cache.cache_dir("build") / build_id(recipe, source_key(recipe))
        configured = configure(recipe, work)
        kb = configured.kbuild
        release = (kb.build_dir / "include/config/kernel.release").read_text().strip()
        built = BuildResult(kb.build_dir, release, kb.build_dir / kb.arch.image, work / "logs/build.log", 0, 0.0)
        pkg_work = Path(tmp) / "ours"
        shutil.copytree(work / "logs", pkg_work / "logs")
        toolchain = toolchain_versions(kb.arch)
        ours_pkg: list[Path] = []
        ours = timed(lambda: ours_pkg.append(make_package(recipe, configured, built, pkg_work, toolchain)))

        # bindeb-pkg writes into O= and its parent: give it a copy of the finished build, at
        # the same depth as the original so the relative paths (and ccache) stay the same.
        deb_work = work.parent / f"{work.name}-bindeb"
        shutil.rmtree(deb_work, ignore_errors=True)
        deb_obj = deb_work / "obj"
        deb_work.mkdir()
        sh("cp", "-a", kb.build_dir, deb_obj)
        argv = [a if not a.startswith("O=") else f"O={deb_obj}" for a in kb.args()]
        load = os.getloadavg()[0]  # the machine is shared: how busy it was when timed
        baseline = timed(lambda: sh(*argv, f"-j{os.cpu_count()}", "bindeb-pkg", env=kb.env()))
        debs = sorted(p for p in deb_work.glob("*.deb") if p.name.startswith(("linux-image-", "linux-headers-")))
        deb_sizes = {p.name: p.stat().st_size for p in debs}
        debs_size = sum(deb_sizes.values())
        ours_size = ours_pkg[0].stat().st_size
        shutil.rmtree(deb_work)
    return report(
        "packaging",
        {
            "distkernel_package_s": round(ours, 2),
            "bindeb_pkg_s": round(baseline, 2),
            "load_1min_at_bindeb": round(load, 2),
            "time_ratio": ratio(ours, baseline),
            "time_goal": "<= 0.2x",
            "package_bytes": ours_size,
            "debs_bytes": debs_size,
            "debs": deb_sizes,
            "size_ratio": ratio(ours_size, debs_size),
            "size_goal": "<= 0.8x",
            "met": ours <= 0.2 * baseline and ours_size <= 0.8 * debs_size,
        },
    )


if __name__ == "__main__":
    main()
