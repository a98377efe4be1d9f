"""Per architecture: the cold build time of its embedded qemu-minimal recipe (a cross
build on another host) beside the x86_64 default recipe's, all of the same size
(tinyconfig + a boot fragment), and `distkernel test`'s time to marker beside a
hand-written qemu line booting the same kernel and test initramfs, alternated in one
run. Goal: harness <= 1.1x the hand-written boot per arch."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
from pathlib import Path

from bench.common import DISTKERNEL, ROOT, marker_seconds, ratio, report, sh, timed
from distkernel.build.package.reader import read_metadata
from distkernel.core.arch import get_arch
from distkernel.workflows.boottest.prepare import prepare
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.run import package_test_modules, scratch_dir
from distkernel.workflows.boottest.testinit import MARKER, init_script

ARCHES = ("x86_64", "arm64", "i386", "ppc64le")
# The qemu line one would write by hand for each arch ({kernel} {initrd} filled in).
HAND = {
    "x86_64": "qemu-system-x86_64 -nographic -no-reboot -m 256 -net none",
    "i386": "qemu-system-i386 -nographic -no-reboot -m 256 -net none",
    "arm64": "qemu-system-aarch64 -M virt -cpu cortex-a57 -m 256 -nographic -no-reboot",
    "ppc64le": "qemu-system-ppc64 -M pseries -m 512 -nographic -no-reboot",
}


def recipe_of(arch: str) -> Path:
    return ROOT / "recipes" / ("qemu-minimal.toml" if arch == "x86_64" else f"qemu-minimal-{arch}.toml")


def hand_boot(arch: str, kernel: Path, initrd: Path, token: str, timeout: float = 180) -> float:
    """Seconds until the marker line of the hand-written qemu line for ARCH."""
    argv = [*HAND[arch].split(), "-kernel", str(kernel), "-initrd", str(initrd)]
    argv += ["-append", f"console={profile(arch).console} panic=-1"]
    return marker_seconds(argv, f"{MARKER} {token}", timeout, f"the hand-written {arch} boot of {kernel}")


def cold_build(arch: str, out: Path) -> float:
    """A build in a new, empty build dir without the compiler cache."""
    env = {**os.environ, "CCACHE_DISABLE": "1"}
    return timed(lambda: sh(*DISTKERNEL, "build", recipe_of(arch), "--fresh", "--out", out, "--json", env=env))


def boots(arch: str, pkg: Path, repeat: int) -> dict[str, object]:
    meta = read_metadata(pkg)
    modules = package_test_modules(pkg, meta)
    token = secrets.token_hex(8)
    prof = profile(arch)
    hand, ours = [], []
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        ready = prepare(
            pkg,
            meta,
            prof,
            firmware="bios",
            layout="plain",
            cmdline=prof.kernel_cmdline(),
            init=init_script(meta.kernel_release, modules, token),
            modules=modules,
            work=Path(tmp),
        )
        assert ready.initrd is not None
        # The plain layout's image: what one would hand to qemu (not the PVH extract).
        image = Path(tmp) / "root" / "boot" / f"vmlinuz-{meta.kernel_release}"
        for _ in range(repeat):  # alternate, so load drifts hit both alike
            hand.append(hand_boot(arch, image, ready.initrd, token))
            doc = json.loads(sh(*DISTKERNEL, "test", pkg, "--json", "--timeout", "180"))
            ours.append(float(doc["marker_s"]))
    m_ours, m_hand = statistics.median(ours), statistics.median(hand)
    return {
        "ours_marker_s": round(m_ours, 2),
        "ours_boot": doc["boot"],
        "hand_marker_s": round(m_hand, 2),
        "ratio": ratio(m_ours, m_hand),
        "met": m_ours <= 1.1 * m_hand,
    }


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", action="append", choices=ARCHES, help="default: all four")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="also time a cold build per arch (minutes each)")
    args = ap.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as out:
        for arch in args.arch or ARCHES:
            entry: dict[str, object] = {"cross": not get_arch(arch).native}
            if args.cold:
                entry["cold_build_s"] = round(cold_build(arch, Path(out) / f"cold-{arch}"), 1)
            built = json.loads(sh(*DISTKERNEL, "build", recipe_of(arch), "--out", out, "--json"))
            entry.update(boots(arch, Path(built["package"]), args.repeat))
            results[arch] = entry
    return report(
        "arches",
        {
            "arches": results,
            "goal": "time to marker <= 1.1x the hand-written qemu line, per arch (TCG)",
            "met": all(bool(r["met"]) for r in results.values() if isinstance(r, dict)),
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
