"""A real Debian root: mmdebstrap'd from Debian's archive with what data/realsys/system.toml
lists, distkernel's dependencies installed from PyPI wheels, cached under the user cache
dir as one tarball keyed by those lists; unpacked per use with distkernel itself
installed from a wheel of this checkout."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import distkernel
from distkernel.core import cache as dk_cache
from distkernel.core.errors import UserError
from distkernel.core.tools import run

# The host's own apt sources, when they name the suite: the root comes from the archive
# this machine already uses (mmdebstrap's default mirror otherwise).
HOST_SOURCES = ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")


def chroot_env() -> dict[str, str]:
    """This machine's environment less pip's settings (its find-links name host folders)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}


@cache
def system_spec() -> dict[str, Any]:
    text = resources.files("distkernel.workflows.data").joinpath("realsys/system.toml").read_text()
    return tomllib.loads(text)


def spec_key() -> str:
    return hashlib.sha256(json.dumps(system_spec(), sort_keys=True).encode()).hexdigest()[:16]


def _sources(suite: str) -> list[str]:
    for p in HOST_SOURCES:
        path = Path(p)
        if path.is_file() and suite in path.read_text():
            return [p]
    return []


def _download_wheels(dest: Path, log: Path) -> None:
    spec = system_spec()
    platforms = [a for p in spec["wheel_platforms"] for a in ("--platform", p)]
    run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *platforms,
            "--python-version", spec["python"], "--implementation", "cp", "-d", dest, *spec["wheels"],
        ],
        log=log,
        what="pip download (the root's Python dependencies)",
    )  # fmt: skip


def root_tarball(log: Path) -> Path:
    """The cached tarball of the root, made once per package list (a few minutes)."""
    spec = system_spec()
    final = dk_cache.cache_dir("realsys") / f"{spec['suite']}-{spec_key()}.tar"
    with dk_cache.locked(f"realsys-{spec_key()}"):
        if final.is_file():
            return final
        work = final.with_name(f".{final.name}.work-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        (work / "wheels").mkdir(parents=True)
        try:
            _download_wheels(work / "wheels", log)
            pip = "python3 -m pip install -q --break-system-packages --no-index --find-links /tmp/wheels"
            reqs = " ".join(f"'{w}'" for w in spec["wheels"])
            run(
                [
                    "mmdebstrap", f"--variant={spec['variant']}", "--include=" + ",".join(spec["packages"]),
                    f"--customize-hook=copy-in {work / 'wheels'} /tmp",
                    f'--customize-hook=chroot "$1" {pip} {reqs}',
                    '--customize-hook=rm -rf "$1/tmp/wheels"',
                    spec["suite"], work / "root.tar", *_sources(spec["suite"]),
                ],
                log=log,
                env=chroot_env(),
                what="mmdebstrap (the Debian root)",
            )  # fmt: skip
            os.replace(work / "root.tar", final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def checkout() -> Path:
    """The source checkout distkernel runs from (src layout: pyproject.toml two levels up)."""
    top = Path(distkernel.__file__).resolve().parents[2]
    if not (top / "pyproject.toml").is_file():
        raise UserError(f"distkernel runs from {top}, not from a source checkout; a real-system test needs one")
    return top


def checkout_wheel(out: Path, log: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, checkout()],
        log=log,
        what="pip wheel (distkernel from this checkout)",
    )
    wheels = sorted(out.glob("distkernel-*.whl"))
    if not wheels:
        raise UserError(f"pip wheel wrote no distkernel wheel into {out}; see {log}")
    return wheels[-1]


def unpack_root(dest: Path, log: Path) -> Path:
    """The root, unpacked into DEST (owners kept), with distkernel from this checkout."""
    tarball = root_tarball(log)
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "-x", "--numeric-owner", "-p", "-f", tarball, "-C", dest], log=log, what="tar (the Debian root)")
    wheel = checkout_wheel(dest / "tmp/distkernel-wheel", log)
    inside = "/" + str(wheel.relative_to(dest))
    run(
        ["chroot", dest, "python3", "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--break-system-packages", inside],
        log=log,
        env=chroot_env(),
        what="pip install (distkernel into the root)",
    )  # fmt: skip
    shutil.rmtree(wheel.parent)
    return dest
