"""An upgrade on a real Debian system (systemd-boot, OVMF, TCG), timed from the console:
from `distkernel install NAME --from URL` in the guest to the report line on the new
kernel, vs Debian's own path on the same guest: `dpkg -i` of the `make bindeb-pkg`
linux-image .deb of the same kernel (its hooks: kernel-install writes the BLS entry),
`bootctl set-default`, the reboot, the report line. Goal <= 1.0x.

Both reboot through the firmware; ours also fetches the package over HTTP (the .deb is
already on the guest's disk) and builds an initramfs. The kernel command line names
the root by device (/dev/vda2) so that the .deb's kernel, installed without an
initramfs generator, boots too."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from bench.common import DISTKERNEL, ROOT, ratio, report, sh
from distkernel.build.recipe import load_recipe
from distkernel.build.source import source_key
from distkernel.build.trust.keys import PACKAGE_KEY, PACKAGE_PUB, generate_keys
from distkernel.core import cache
from distkernel.workflows.pipeline import build_id, configure
from distkernel.workflows.realsys.guest import BINHOST_URL, Guest
from distkernel.workflows.realsys.system import system_image

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
    systemctl reboot
    ;;
{next})
    echo deb-start
    dpkg -i /{deb}
    bootctl set-default "$(cat /etc/machine-id)-{third}.conf"
    systemctl reboot
    ;;
*)
    systemctl poweroff
    ;;
esac
"""


def _build(tmp: Path, *extra: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(sh(*DISTKERNEL, "build", RICH, "--out", tmp, "--json", *extra))
    return doc


def _bindeb(tmp: Path) -> tuple[Path, str]:
    """Debian's linux-image .deb of the rich kernel, from a copy of its finished build."""
    recipe = load_recipe(RICH)
    work = cache.cache_dir("build") / build_id(recipe, source_key(recipe))
    kb = configure(recipe, work).kbuild
    deb_work = work.parent / f"{work.name}-bindeb"
    shutil.rmtree(deb_work, ignore_errors=True)
    deb_work.mkdir()
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


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as t:
        tmp = Path(t)
        keys = generate_keys(tmp / "keys")
        first = _build(tmp / "first")
        nxt = _build(tmp / "next", "--no-strict", "--set", f'CONFIG_LOCALVERSION="{NEXT}"')
        deb, third = _bindeb(tmp)
        first_rel = first["metadata"]["kernel_release"]  # type: ignore[index]
        next_rel = nxt["metadata"]["kernel_release"]  # type: ignore[index]
        for pkg in (first["package"], nxt["package"]):  # the guest trusts the key: both signed
            sh(*DISTKERNEL, "sign", str(pkg), "--key", keys.path(PACKAGE_KEY))
        repo = tmp / "binhost"
        sh(*DISTKERNEL, "repo", "init", repo, "--key", keys.path(PACKAGE_KEY))
        sh(*DISTKERNEL, "repo", "add", repo, str(nxt["package"]))
        plan = PLAN.format(
            first=first_rel,
            next=next_rel,
            third=third,
            name=nxt["metadata"]["name"],  # type: ignore[index]
            url=BINHOST_URL,
            deb=DEB_IN_ROOT,
        )
        work = tmp / "sys"
        work.mkdir()
        disk = system_image(
            work,
            Path(str(first["package"])),
            plan=plan,
            trusted=keys.path(PACKAGE_PUB),
            files={DEB_IN_ROOT: deb},
            root_device="/dev/vda2",
        )
        with served(repo) as url:
            guest = Guest.start(disk, work, binhost_port=urllib.parse.urlsplit(url).port)
            try:
                guest.expect(rf"REALSYS state=running release={first_rel}$", BOOT_S, what="first boot")
                guest.expect(r"REALSYS plan: ours-start", 60, what="install")
                ours_start = guest.milestones[-1].seconds
                guest.expect(rf"REALSYS state=running release={next_rel}$", BOOT_S, what="ours")
                ours = guest.milestones[-1].seconds - ours_start
                guest.expect(r"REALSYS plan: deb-start", 60, what="dpkg -i")
                deb_start = guest.milestones[-1].seconds
                guest.expect(rf"REALSYS state=running release={third}$", BOOT_S, what="dpkg -i")
                baseline = guest.milestones[-1].seconds - deb_start
                guest.wait_exit(120)
            finally:
                guest.stop()
    return report(
        "real_system_upgrade",
        {
            "distkernel_install_to_marker_s": round(ours, 1),
            "dpkg_i_to_marker_s": round(baseline, 1),
            "ratio": ratio(ours, baseline),
            "goal": "<= 1.0x",
            "met": ours <= baseline,
            "milestones": [[m.seconds, m.line] for m in guest.milestones],
        },
    )


if __name__ == "__main__":
    main()
