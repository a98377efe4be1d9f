"""time to marker of `distkernel test` (BIOS direct boot) beside a hand-written
`qemu -kernel -initrd` boot of the same kernel and test initramfs, alternated in one
run; plus the UEFI time to marker per layout. Goals under TCG: harness <= 1.1x the
hand-written boot, <= 2.5 s to marker for BIOS direct boot."""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, marker_seconds, ratio, report, sh
from distkernel.build.package.reader import read_metadata
from distkernel.workflows.boottest.prepare import prepare
from distkernel.workflows.boottest.profile import profile
from distkernel.workflows.boottest.run import package_test_modules, scratch_dir
from distkernel.workflows.boottest.testinit import MARKER, init_script


def hand_boot(kernel: Path, initrd: Path, token: str, timeout: float = 120) -> float:
    """A hand-written qemu line; seconds until the marker line."""
    argv = ["qemu-system-x86_64", "-kernel", str(kernel), "-initrd", str(initrd)]
    argv += ["-append", "console=ttyS0 panic=-1", "-nographic", "-no-reboot", "-m", "256", "-net", "none"]
    return marker_seconds(argv, f"{MARKER} {token}", timeout, f"the hand-written boot of {kernel}")


def ours(pkg: Path, *args: str) -> tuple[float, float, dict[str, object]]:
    """(time to marker, wall time of the whole command, its JSON)."""
    start = time.monotonic()
    doc = json.loads(sh(*DISTKERNEL, "test", pkg, "--json", "--timeout", "180", *args))
    return float(doc["marker_s"]), time.monotonic() - start, doc


def profile_of(wall: float, doc: dict[str, object]) -> dict[str, float]:
    """Where the command's wall time goes: preparing (install, initramfs, images, or a
    kept preparation copied), qemu until the marker, and the rest (start-up, the
    package's judgement, stopping qemu, cleaning up)."""
    prepare, marker = float(doc["prepare_s"]), float(doc["marker_s"])  # type: ignore[arg-type]
    return {"prepare": prepare, "qemu_to_marker": marker, "rest": wall - prepare - marker}


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--uefi-repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        pkg = Path(json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", out, "--json"))["package"])
        meta = read_metadata(pkg)
        modules = package_test_modules(pkg, meta)
        token = secrets.token_hex(8)
        with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
            ready = prepare(
                pkg,
                meta,
                profile(meta.arch),
                firmware="bios",
                layout="plain",
                cmdline="console=ttyS0 panic=-1",
                init=init_script(meta.kernel_release, modules, token),
                modules=modules,
                work=Path(tmp),
            )
            assert ready.initrd is not None
            bzimage = Path(tmp) / "root" / "boot" / f"vmlinuz-{meta.kernel_release}"  # the plain layout's name
            hand_bz, hand_pvh, our_marker, our_wall, stages, firsts = [], [], [], [], [], []
            for _ in range(args.repeat):  # alternate, so load drifts hit both alike
                hand_bz.append(hand_boot(bzimage, ready.initrd, token))
                if ready.boot == "pvh" and ready.kernel is not None:
                    hand_pvh.append(hand_boot(ready.kernel, ready.initrd, token))
                marker, wall, doc = ours(pkg)
                our_marker.append(marker)
                our_wall.append(wall)
                stages.append(profile_of(wall, doc))
                firsts.append({"wall_s": round(wall, 2), "prepare_cached": doc["prepare_cached"]})
        uefi = {}
        for layout in ("bls", "uki", "grub"):
            times = [ours(pkg, "--firmware", "uefi", "--layout", layout)[0] for _ in range(args.uefi_repeat)]
            uefi[layout] = round(statistics.median(times), 2)
    m_ours, m_bz = statistics.median(our_marker), statistics.median(hand_bz)
    m_pvh = statistics.median(hand_pvh) if hand_pvh else None
    return report(
        "boot test",
        {
            "ours_marker_s": round(m_ours, 2),
            "ours_boot": doc["boot"],
            "ours_accel": doc["accel"],
            "ours_command_wall_s": round(statistics.median(our_wall), 2),
            "hand_pvh_wall_goal_s": round(1.5 * m_pvh, 2) if m_pvh else None,
            "ours_command_profile_s": {k: round(statistics.median(p[k] for p in stages), 2) for k in stages[0]},
            "ours_first_run": firsts[0],
            "hand_bzimage_marker_s": round(m_bz, 2),
            "hand_pvh_marker_s": round(m_pvh, 2) if m_pvh else None,
            "ratio_vs_hand_bzimage": ratio(m_ours, m_bz),
            "ratio_vs_hand_same_boot": ratio(m_ours, m_pvh) if m_pvh else ratio(m_ours, m_bz),
            "uefi_marker_s": uefi,
            "goal": "<= 1.1x the hand-written boot and <= 2.5 s to marker (BIOS direct boot, TCG)",
            "met": m_ours <= 1.1 * m_bz and m_ours <= 2.5,
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
