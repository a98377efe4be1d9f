"""`export --format deb` of a finished package: its time, and the size of its
linux-image and linux-headers .debs beside the distkernel package they came from, and
beside the two files a binhost publishes it as (`repo add`: the kernel part a
binary-only client downloads, the headers part only module builders download). With
--bindeb, beside the .debs `make bindeb-pkg` makes of the same build, and its time (the
packaging benchmark, bench/package_vs_bindeb.py, run in the same process; minutes):

- the kernel part vs Debian's linux-image .deb (goal <= 0.8x),
- the headers part vs Debian's linux-headers .deb (goal <= 1.0x),
- `export --format deb` time vs `make bindeb-pkg` on the same finished build (goal <= 0.2x;
  the mean of an export before and one after bindeb-pkg)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed
from distkernel.workflows.repo.parts import split_package

GOALS = {"kernel_part_vs_image_deb": 0.8, "headers_part_vs_headers_deb": 1.0, "export_vs_bindeb_time": 0.2}


def _export(package: Path, out: Path) -> tuple[float, float, list[dict[str, object]]]:
    """One timed `export --format deb`: (seconds, the 1-minute load before it, its files)."""
    files: list[dict[str, object]] = []
    load = os.getloadavg()[0]  # the machine is shared: how busy it was when timed
    argv: list[str | Path] = [*DISTKERNEL, "export", package, "--format", "deb", "--out", out, "--json"]
    seconds = timed(lambda: files.extend(json.loads(sh(*argv))["files"]))
    return seconds, load, files


def main(bindeb: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp, "--json"))["package"])
        seconds, load, files = _export(package, Path(tmp) / "debs")
        ours = {Path(str(f["path"])).name.split("_")[0]: int(str(f["size"])) for f in files}
        kernel, headers = Path(tmp) / "kernel.tar.zst", Path(tmp) / "headers.tar.zst"
        split_package(package, kernel, headers)
        doc: dict[str, object] = {
            "export_deb_s": round(seconds, 2),
            "load_1min_at_export": round(load, 2),
            "package_bytes": package.stat().st_size,
            "kernel_part_bytes": kernel.stat().st_size,
            "headers_part_bytes": headers.stat().st_size,
            "binary_only_download_vs_whole_package": ratio(kernel.stat().st_size, package.stat().st_size),
            "exported_debs": ours,
        }
        if not bindeb:
            return report("export_size", doc)
        from bench.package_vs_bindeb import main as packaging

        theirs_doc = packaging()
        # Timed again right after bindeb-pkg: the time ratio uses the mean of the two
        # exports that bracket it, so that a load that changes over the minutes of
        # bindeb-pkg weighs on both sides alike.
        after, load_after, _ = _export(package, Path(tmp) / "debs-again")
    theirs = {name.split("_")[0]: int(size) for name, size in dict(theirs_doc["debs"]).items()}  # type: ignore[call-overload]
    image = next(size for name, size in theirs.items() if name.startswith("linux-image-"))
    header_deb = next(size for name, size in theirs.items() if name.startswith("linux-headers-"))
    bindeb_s = float(str(theirs_doc["bindeb_pkg_s"]))
    doc["export_deb_after_bindeb_s"] = round(after, 2)
    doc["load_1min_at_export_after_bindeb"] = round(load_after, 2)
    doc["bindeb_debs"] = theirs
    doc["bindeb_pkg_s"] = bindeb_s
    doc["load_1min_at_bindeb"] = theirs_doc["load_1min_at_bindeb"]
    doc["size_ratio"] = {name: ratio(size, theirs[name]) for name, size in ours.items() if name in theirs}
    ratios = {
        "kernel_part_vs_image_deb": ratio(int(str(doc["kernel_part_bytes"])), image),
        "headers_part_vs_headers_deb": ratio(int(str(doc["headers_part_bytes"])), header_deb),
        "export_vs_bindeb_time": ratio((seconds + after) / 2, bindeb_s),
    }
    doc["ratios"] = ratios
    doc["goals"] = GOALS
    doc["met"] = {name: ratios[name] <= goal for name, goal in GOALS.items()}
    return report("export_size", doc)


if __name__ == "__main__":
    main(bindeb="--bindeb" in sys.argv[1:])
