"""The acceptance run against Debian's real archive: a recipe pinned to an older
linux-source-6.12 version is bumped to the archive's newest (`apt-cache madison`),
committed, then the matrix builds it (the .deb fetched with apt into the cache, never
installed), boot-tests it and publishes it to a binhost. Prints the numbers as JSON.
Builds a 6.12 kernel: many minutes on two cores."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DISTKERNEL, ROOT, report, sh
from distkernel.build.feeds import debian

# "seconds" is the cell's whole time: the matrix's time beyond it is mostly the publish.
CELL_FIELDS = ("name", "version", "release", "status", "failure", "build_s", "boot_s", "size", "seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", default="6.12")
    parser.add_argument("--keep", type=Path, help="Keep the work folder here (default: a temporary one).")
    args = parser.parse_args()
    name = f"linux-source-{args.series}"
    found = debian.versions(name)
    if len(found) < 2:
        raise SystemExit(f"apt knows {len(found)} version(s) of {name}; an acceptance bump needs two (apt-get update)")
    old, newest = found[1], found[0]
    work = args.keep or Path(tempfile.mkdtemp(prefix="distkernel-acceptance-"))
    kernels = work / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "recipes" / "fragments", kernels / "fragments", dirs_exist_ok=True)
    text = (ROOT / "recipes" / "qemu-minimal.toml").read_text()
    text = text.replace('name = "qemu-minimal"', f'name = "debian-{args.series}"')
    text = text.replace('source = "debian:linux-source-6.1"', f'source = "debian:{name}"\nversion = "{old}"')
    (kernels / "debian.toml").write_text(text)
    git = ["git", "-C", str(kernels), "-c", "user.name=acceptance", "-c", "user.email=acceptance@example.org"]
    subprocess.run(["git", "init", "-q", str(kernels)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "recipes"], check=True)
    sh(*DISTKERNEL, "key", "generate", "--out", work / "keys")
    start = time.monotonic()
    bumped = json.loads(sh(*DISTKERNEL, "bump", kernels, "--commit", "--json"))
    bump_s = time.monotonic() - start
    start = time.monotonic()
    again = json.loads(sh(*DISTKERNEL, "bump", kernels, "--json"))
    noop_s = time.monotonic() - start
    (work / "matrix.toml").write_text(
        '[matrix]\nrecipes = ["kernels/debian.toml"]\narches = ["x86_64"]\nbinhost = "bh"\nkey = "keys/package.key"\n'
    )
    start = time.monotonic()
    done = subprocess.run([*DISTKERNEL, "matrix", work / "matrix.toml", "--json"], capture_output=True, text=True)
    matrix_s = time.monotonic() - start
    doc: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {"error": done.stderr[-2000:]}
    log = subprocess.run([*git, "log", "--format=%s", "-2"], capture_output=True, text=True).stdout.splitlines()
    report(
        "debian_acceptance",
        {
            "package": name,
            "from": old,
            "to": newest,
            "bumped": [(b["from"], b["to"]) for b in bumped["bumped"]],
            "commits": log,
            "bump_s": round(bump_s, 2),
            "nothing_new_s": round(noop_s, 2),
            "nothing_new": again["bumped"] == [],
            "matrix_exit": done.returncode,
            "matrix_s": round(matrix_s, 1),
            "cells": [{k: c.get(k) for k in CELL_FIELDS} for c in doc.get("cells", [])],
            "published": doc.get("published"),
            "report": doc.get("html"),
            "work": str(work),
        },
    )


if __name__ == "__main__":
    main()
