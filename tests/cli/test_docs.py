"""The documents run as written: every ```sh block of README.md and docs/*.md (all blocks
of one file in order, as one shell script) runs in an empty folder that has the
checkout's `recipes/` and `tests/data/`, with `distkernel` on PATH, the user's cache (the
default package is built once per session) and a binhost on 127.0.0.1. A block that is
not meant to run says so in an HTML comment on the line before it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Built

FENCE = re.compile(r"^```(\S*)\s*$")


def sh_blocks(doc: Path) -> list[str]:
    blocks: list[str] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        skipped = i > 0 and lines[i - 1].startswith("<!--") and "not run" in lines[i - 1]
        if m.group(1) == "sh" and not skipped:
            blocks.append("\n".join(lines[i + 1 : end]))
        i = end + 1
    return blocks


DOCS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if sh_blocks(p)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_and_the_signing_guide_have_walk_throughs() -> None:
    assert {p.name for p in DOCS} >= {"README.md", "signing.md"}
    assert "make demo" not in "\n".join(sh_blocks(ROOT / "README.md"))  # the suite does not run itself


@pytest.mark.kernel
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_document_runs_as_written(doc: Path, default_package: Built, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "recipes").symlink_to(ROOT / "recipes")
    (work / "tests").mkdir()
    (work / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "distkernel"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} -m distkernel "$@"\n')
    wrapper.chmod(0o755)
    script = "set -ex\n" + "\n".join(sh_blocks(doc)) + "\n"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PORT": str(free_port())}
    env.pop("DISTKERNEL_CONFIG", None)
    log = tmp_path / "walk-through.log"
    with log.open("w") as sink:  # a file, not a pipe: a server left running cannot hold it open
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script], cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=1500)
        finally:
            with contextlib.suppress(ProcessLookupError):  # a server the script started and did not stop
                os.killpg(proc.pid, signal.SIGTERM)
    output = log.read_text()
    assert proc.returncode == 0, output[-6000:]
    assert "Traceback" not in output
