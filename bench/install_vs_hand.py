"""the whole install of the default recipe's package into a fresh root with the
builtin initramfs and the plain layout (verify every member it places, modules, depmod,
initramfs, boot files, state, fsync, rename; the headers tree only where the root builds
external modules), through the CLI as a user runs it. Goal: <= 1.25x the hand steps.

Baseline, in the same run: the same steps by hand, as the seeds' users script them:
`tar --zstd -x` of the package (no verification, no staging, no sync), copy the boot
files, move modules and headers into place, `depmod -b`, and a busybox-static initramfs
made with `find | cpio -o -H newc | gzip` carrying the whole modules tree (a script does
not compute module closures). It does less than ours, so it is a floor to compare with,
not a competitor that does the same work."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ratio, report, sh, timed


def fresh_root(parent: Path, n: list[int]) -> Path:
    n[0] += 1
    root = parent / f"root{n[0]}"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "boot").mkdir()
    (root / "etc").mkdir()
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def by_hand(pkg: Path, root: Path, release: str) -> None:
    work = root / "tmp-unpack"
    work.mkdir()
    sh("tar", "--zstd", "-xf", pkg, "-C", work)
    for name, dest in (("vmlinuz", "vmlinuz"), ("System.map", "System.map"), ("config", "config")):
        shutil.copyfile(work / "kernel" / name, root / "boot" / f"{dest}-{release}")
    (root / "usr/lib/modules").mkdir(parents=True, exist_ok=True)
    (work / "modules").rename(root / "usr/lib/modules" / release)
    (root / "usr/src").mkdir(exist_ok=True)
    (work / "headers").rename(root / "usr/src" / f"linux-headers-{release}")
    sh("depmod", "-b", root, release)
    initrd = work / "initrd"
    (initrd / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", initrd / "bin/busybox")
    (initrd / "init").write_text("#!/bin/busybox sh\n/bin/busybox sh\n")
    (initrd / "init").chmod(0o755)
    shutil.copytree(root / "usr/lib/modules" / release, initrd / "lib/modules" / release, symlinks=True)
    out = root / "boot" / f"initramfs-{release}.img"
    sh("sh", "-c", f"cd {initrd} && find . | cpio -o -H newc --quiet | gzip -6 > {out}")
    shutil.rmtree(work)


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        built = json.loads(sh(*DISTKERNEL, "build", DEFAULT_RECIPE, "--out", tmp, "--json"))
        pkg, release = Path(built["package"]), built["metadata"]["kernel_release"]
        n = [0]

        def ours() -> None:
            root = fresh_root(Path(tmp), n)
            sh(*DISTKERNEL, "install", pkg, "--root", root, "--layout", "plain", "--initramfs", "builtin")

        def library() -> None:
            from distkernel.target.install import install_package

            install_package(pkg, fresh_root(Path(tmp), n), layout="plain", initramfs="builtin")

        # Interleaved, so that the shared disk's moods (other jobs' I/O) hit all alike.
        runs: dict[str, list[float]] = {"cli": [], "library": [], "by_hand": [], "startup": []}
        for _ in range(args.repeat):
            runs["cli"].append(timed(ours))
            runs["library"].append(timed(library))
            runs["by_hand"].append(timed(lambda: by_hand(pkg, fresh_root(Path(tmp), n), release)))
            runs["startup"].append(timed(lambda: sh(*DISTKERNEL, "--version")))
        ours_s, library_s, baseline_s, startup_s = (statistics.median(runs[k]) for k in runs)
    return report(
        "install",
        {
            "distkernel_install_cli_s": round(ours_s, 3),
            "distkernel_install_library_s": round(library_s, 3),
            "python_cli_startup_s": round(startup_s, 3),
            "by_hand_tar_depmod_cpio_s": round(baseline_s, 3),
            "ratio_cli_vs_by_hand": ratio(ours_s, baseline_s),
            "goal": "<= 1.25x the hand steps",
            "met": ours_s <= 1.25 * baseline_s,
            # Where the CLI's time goes: the interpreter and the CLI's common imports
            # (`--version`), the install's own imports and output, the install itself.
            "profile_s": {
                "python_and_cli_startup": round(startup_s, 3),
                "install_imports_and_output": round(ours_s - library_s - startup_s, 3),
                "install_library": round(library_s, 3),
            },
            "repeat": args.repeat,
            "package": pkg.name,
        },
    )


if __name__ == "__main__":
    main()
