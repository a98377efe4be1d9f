"""An upgrade on a real Debian system (systemd-boot, OVMF, TCG), timed from the console:
from `distkernel install NAME --from URL` in the guest to the report line on the new
kernel, vs Debian's own path on the same guest: `dpkg -i` of the `make bindeb-pkg`
linux-image .deb of the same kernel with Debian's hooks (initramfs-tools makes its
initramfs, kernel-install writes the BLS entry), `bootctl set-default`, the reboot, the
report line. Goal <= 1.0x.

Both reboot through the firmware and boot with an initramfs; ours also fetches the
package over HTTP (the .deb is already on the guest's disk) and checks its signature.
Each run is a guest on a fresh disk, ours first; the figures are the runs' medians."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import DISTKERNEL, ROOT, ratio, report, sh
from distkernel.build.recipe import load_recipe
from distkernel.build.source import source_key
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, generate_keys
from distkernel.core import cache
from distkernel.workflows.pipeline import build_id, configure
from distkernel.workflows.realsys.guest import BINHOST_URL, Guest, Milestone
from distkernel.workflows.realsys.system import system_image
from tests.recipekeys import ensure_recipe_keys

RICH = ROOT / "tests" / "data" / "recipes" / "rich.toml"
NEXT = "-distkernel.next"
DEB = "-deb"  # appended to the rich release by make LOCALVERSION=: a third release
DEB_IN_ROOT = "var/tmp/linux-image.deb"
BOOT_S = 900.0

PLAN = """#!/bin/sh
set -e
case "$1" in
{first})
    echo ours-start
    distkernel install {name} --from {url}
    echo ours-installed
    systemctl reboot
    ;;
{next})
    echo deb-start
    dpkg -i /{deb}
    bootctl set-default "$(cat /etc/machine-id)-{third}.conf"
    echo deb-installed
    systemctl reboot
    ;;
*)
    systemctl poweroff
    ;;
esac
"""


def _build(tmp: Path, *extra: str) -> dict[str, object]:
    ensure_recipe_keys()  # the recipe signs (its [sign])
    doc: dict[str, object] = json.loads(sh(*DISTKERNEL, "build", RICH, "--out", tmp, "--json", *extra))
    return doc


def _bindeb(tmp: Path) -> tuple[Path, str]:
    """Debian's linux-image .deb of the rich kernel, from a copy of its finished build."""
    recipe = load_recipe(RICH)
    work = cache.cache_dir("build") / build_id(recipe, source_key(recipe))
    deb_work = work.parent / f"{work.name}-bindeb"
    shutil.rmtree(deb_work, ignore_errors=True)
    deb_work.mkdir()
    # The build dir is shared by every build of the recipe (its --set variants too):
    # configured and copied under its lock, or a concurrent build gets this config.
    with cache.locked(f"build-{work.name}"):
        kb = configure(recipe, work).kbuild
        sh("cp", "-a", kb.build_dir, deb_work / "obj")
    argv = [a if not a.startswith("O=") else f"O={deb_work / 'obj'}" for a in kb.args()]
    sh(*argv, f"-j{os.cpu_count()}", f"LOCALVERSION={DEB}", "bindeb-pkg", env=kb.env())
    release = (deb_work / "obj/include/config/kernel.release").read_text().strip()
    image = next(p for p in deb_work.glob("linux-image-*.deb") if "-dbg" not in p.name)
    shutil.copyfile(image, tmp / "linux-image.deb")
    shutil.rmtree(deb_work)
    return tmp / "linux-image.deb", release


@contextlib.contextmanager
def served(repo: Path) -> Iterator[str]:
    """`distkernel repo serve` on a free port of 127.0.0.1; its URL."""
    proc = subprocess.Popen([*DISTKERNEL, "repo", "serve", str(repo), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().split(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _path(guest: Guest, name: str, release: str) -> dict[str, float]:
    """One upgrade path's seconds from the console: its install (NAME-start to
    NAME-installed), the reboot to the new kernel's first line (of which the firmware:
    the machine's restart to OVMF starting the disk), that kernel's boot to the report
    line, and the total."""
    at = []
    for pattern, what in (
        (rf"REALSYS plan: {name}-start$", "start"),
        (rf"REALSYS plan: {name}-installed$", "installed"),
        (r"reboot: machine restart", "restart"),
        (r"BdsDxe: starting ", "firmware"),
        (rf"Linux version {re.escape(release)} ", "kernel"),
        (rf"REALSYS state=running release={re.escape(release)}$", "marker"),
    ):
        guest.expect(pattern, BOOT_S, what=f"{name}: {what}", unless=r"REALSYS plan: exit=[1-9]")
        at.append(guest.milestones[-1].seconds)
    return {
        "install": round(at[1] - at[0], 1),
        "reboot_to_kernel": round(at[4] - at[1], 1),
        "of_which_firmware": round(at[3] - at[2], 1),
        "kernel_to_marker": round(at[5] - at[4], 1),
        "total": round(at[5] - at[0], 1),
    }


@dataclass(frozen=True)
class Kernels:
    """What every run's guest gets: the first package, the binhost with the next one,
    the .deb of a third release, the key the guest trusts, the plan."""

    first: Path
    first_release: str
    next_release: str
    third_release: str
    deb: Path
    repo: Path
    public_key: Path
    plan: str


def _kernels(tmp: Path) -> Kernels:
    keys = generate_keys(tmp / "keys")
    first = _build(tmp / "first")
    nxt = _build(tmp / "next", "--no-strict", "--set", f'CONFIG_LOCALVERSION="{NEXT}"')
    deb, third = _bindeb(tmp)
    for pkg in (first["package"], nxt["package"]):  # the guest trusts the key: both signed
        sh(*DISTKERNEL, "sign", str(pkg), "--key", keys.path(PACKAGE_KEY))
    repo = tmp / "binhost"
    sh(*DISTKERNEL, "repo", "init", repo, "--key", keys.path(PACKAGE_KEY))
    sh(*DISTKERNEL, "repo", "add", repo, str(nxt["package"]))
    first_rel = first["metadata"]["kernel_release"]  # type: ignore[index]
    next_rel = nxt["metadata"]["kernel_release"]  # type: ignore[index]
    plan = PLAN.format(
        first=first_rel,
        next=next_rel,
        third=third,
        name=nxt["metadata"]["name"],  # type: ignore[index]
        url=BINHOST_URL,
        deb=DEB_IN_ROOT,
    )
    return Kernels(Path(str(first["package"])), first_rel, next_rel, third, deb, repo, keys.path(PACKAGE_PUB), plan)


def _run(k: Kernels, work: Path, console: Path | None) -> tuple[dict[str, float], dict[str, float], list[Milestone]]:
    """One guest on a fresh disk: both paths, ours first."""
    work.mkdir()
    disk = system_image(work, k.first, plan=k.plan, trusted=k.public_key, files={DEB_IN_ROOT: k.deb})
    with served(k.repo) as url:
        guest = Guest.start(disk, work, binhost_port=urllib.parse.urlsplit(url).port)
        try:
            guest.expect(rf"REALSYS state=running release={k.first_release}$", BOOT_S, what="first boot")
            ours = _path(guest, "ours", k.next_release)
            baseline = _path(guest, "deb", k.third_release)
            guest.wait_exit(120)
        finally:
            guest.stop()
            if console:
                shutil.copyfile(guest.log.with_suffix(".timed.log"), console)
    return ours, baseline, guest.milestones


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="guests, each on a fresh disk (medians); about 5 min each")
    ap.add_argument("--console", type=Path, help="keep each guest's timed console here, as FILE.N")
    args = ap.parse_args()
    ours: list[dict[str, float]] = []
    debs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as t:
        kernels = _kernels(Path(t))
        for n in range(args.runs):
            console = args.console.with_name(f"{args.console.name}.{n + 1}") if args.console else None
            mine, theirs, milestones = _run(kernels, Path(t) / f"sys{n}", console)
            ours.append(mine)
            debs.append(theirs)
    mine, theirs = _medians(ours), _medians(debs)
    # The firmware's share is the same machine's for both paths, and its time varies by
    # tens of seconds between boots (OVMF under TCG): shown apart, and left out of a
    # second ratio that then compares what the two paths do.
    no_fw = [o["total"] - o["of_which_firmware"] for o in ours], [d["total"] - d["of_which_firmware"] for d in debs]
    return report(
        "real_system_upgrade",
        {
            "distkernel_install_to_marker_s": mine["total"],
            "dpkg_i_to_marker_s": theirs["total"],
            "ratio": ratio(mine["total"], theirs["total"]),
            "goal": "<= 1.0x",
            "met": mine["total"] <= theirs["total"],
            "ratio_without_firmware": ratio(statistics.median(no_fw[0]), statistics.median(no_fw[1])),
            "distkernel_steps_s": mine,
            "dpkg_i_steps_s": theirs,
            "runs": [{"distkernel": o, "dpkg_i": d} for o, d in zip(ours, debs, strict=True)],
            "last_run_milestones": [[m.seconds, m.line] for m in milestones],
        },
    )


if __name__ == "__main__":
    main()
