"""the builtin initramfs vs dracut for the same kernel release, modules (the default
recipe's, after depmod in a scratch root) and compression: generation time and image size.
Goal: builtin >= 20x faster and <= 0.5x the size."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh
from distkernel.target.initramfs import InitramfsResult, InitramfsSpec, make_initramfs


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="builtin runs (dracut runs max(1, repeat // 2))")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        doc = json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", top, "--json"))
        release = doc["metadata"]["kernel_release"]
        sh("tar", "--zstd", "-xf", doc["package"], "-C", top, "kernel", "modules")
        root = top / "root"
        mods = root / "lib/modules" / release
        mods.parent.mkdir(parents=True)
        (top / "modules").rename(mods)
        sh("depmod", "-b", root, release)
        spec = InitramfsSpec(release, mods, top / "kernel/config", modules=("test_module",))

        def runs(backend: str, n: int) -> list[InitramfsResult]:
            return [make_initramfs(backend, spec, top / f"{backend}.img", root=root) for _ in range(n)]

        ours = runs("builtin", args.repeat)
        dracut = runs("dracut", max(1, args.repeat // 2))
    t_ours = statistics.median(r.seconds for r in ours)
    t_dracut = statistics.median(r.seconds for r in dracut)
    s_ours, s_dracut = ours[-1].bytes, dracut[-1].bytes
    return report(
        "initramfs",
        {
            "release": release,
            "compression": ours[-1].compression,
            "builtin_s": round(t_ours, 3),
            "dracut_s": round(t_dracut, 3),
            "speedup": round(t_dracut / t_ours, 1),
            "time_goal": ">= 20x faster",
            "builtin_bytes": s_ours,
            "dracut_bytes": s_dracut,
            "size_ratio": ratio(s_ours, s_dracut),
            "size_goal": "<= 0.5x",
            "builtin_modules": len(ours[-1].modules),
            "dracut_modules": len(dracut[-1].modules),
            "met": t_dracut >= 20 * t_ours and s_ours <= 0.5 * s_dracut,
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
