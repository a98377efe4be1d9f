"""`export --format deb` of a finished package: its time, and the size of its
linux-image and linux-headers .debs beside the distkernel package they came from and,
with --bindeb, beside the .debs `make bindeb-pkg` makes of the same build (the
packaging benchmark, bench/package_vs_bindeb.py, run in the same process; minutes)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed


def main(bindeb: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp, "--json"))["package"])
        out = Path(tmp) / "debs"
        files: list[dict[str, object]] = []
        seconds = timed(
            lambda: files.extend(
                json.loads(sh(*DISTKERNEL, "export", package, "--format", "deb", "--out", out, "--json"))["files"]
            )
        )
        ours = {Path(str(f["path"])).name.split("_")[0]: int(str(f["size"])) for f in files}
        doc: dict[str, object] = {
            "export_deb_s": round(seconds, 2),
            "package_bytes": package.stat().st_size,
            "exported_debs": ours,
        }
    if bindeb:
        from bench.package_vs_bindeb import main as packaging

        theirs = {name.split("_")[0]: int(size) for name, size in dict(packaging()["debs"]).items()}  # type: ignore[call-overload]
        doc["bindeb_debs"] = theirs
        doc["size_ratio"] = {name: ratio(size, theirs[name]) for name, size in ours.items() if name in theirs}
    return report("export_size", doc)


if __name__ == "__main__":
    main(bindeb="--bindeb" in sys.argv[1:])
