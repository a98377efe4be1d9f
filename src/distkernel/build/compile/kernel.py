"""The compile stage: `make all` in the build dir with a progress count of objects
(done / expected: remembered from an earlier build of the same config, else estimated
from the tree's Kbuild files), the full log on disk."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.compile.distribute import Distribution, Launch, Report, launched
from distkernel.build.compile.estimate import config_values, estimate_objects
from distkernel.build.compile.kbuild import Kbuild
from distkernel.core import cache
from distkernel.core.errors import Failure, ToolError
from distkernel.core.progress import Progress, Silent

# Kbuild's short log: "  CC      init/main.o", "  CC [M]  lib/test_module.o", "  AS      ..."
OBJECT_LINE = re.compile(r"^  (?:CC|AS)(?: \[M\])?\s+\S+\.o$")


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    kernel_release: str
    image: Path
    log: Path
    objects: int  # objects compiled by this run (0 when make found nothing to do)
    seconds: float
    distributed: Report | None = None  # what ran where, for a distcc or icecream build


def _stats_file() -> Path:
    return cache.cache_dir("stats") / "objects.json"


def expected_objects(config_sha: str, arch: str) -> int | None:
    """Objects a clean build of this config compiled last time (None: never built):
    the denominator of the progress bar."""
    try:
        stats = json.loads(_stats_file().read_text())
    except (OSError, ValueError):
        return None
    value = stats.get(config_sha)
    return int(value) if value else None


def _remember(config_sha: str, count: int) -> None:
    try:
        stats = json.loads(_stats_file().read_text())
    except (OSError, ValueError):
        stats = {}
    # An incremental build compiles fewer objects: keep the largest (clean) count.
    stats[config_sha] = max(count, int(stats.get(config_sha, 0)))
    cache.atomic_write_text(_stats_file(), json.dumps(stats, indent=1))


def compile_kernel(
    kb: Kbuild,
    config_sha: str,
    jobs: int,
    log: Path,
    progress: Progress | None = None,
    dist: Distribution | None = None,
    on_line: Callable[[str], None] | None = None,
) -> BuildResult:
    """`make all`; ON_LINE sees each line of its output as it comes."""
    progress = progress or Silent()
    total = expected_objects(config_sha, kb.arch.name)
    if total is None:  # the first build of this config: count what its Kbuild files enable
        total = estimate_objects(kb.source.path, kb.arch.srcarch, config_values(kb.build_dir / ".config"))
    progress.stage("compile", total)
    done = 0

    def count(line: str) -> None:
        nonlocal done
        if OBJECT_LINE.match(line):
            done += 1
            progress.update(done, total)
        if on_line is not None:
            on_line(line)

    start = time.monotonic()
    launch: Launch | None = None
    with contextlib.ExitStack() as stack:
        if dist is not None:
            work = kb.build_dir.parent
            launch = stack.enter_context(launched(dist, work, f"{kb.arch.cross_compile}gcc", kb.ccache))
            kb = dataclasses.replace(kb, launch=tuple(launch.env.items()))
        try:
            kb.make("all", log=log, jobs=jobs, on_line=count)
        except ToolError as e:
            raise Failure(f"kernel build failed ({e.message})", log=log, details=e.details) from None
    if done:
        _remember(config_sha, done)
    release = (kb.build_dir / "include/config/kernel.release").read_text().strip()
    image = kb.build_dir / kb.arch.image
    if not image.is_file():
        raise Failure(f"kernel build left no image at {image}", log=log)
    report = launch.report() if launch else None
    return BuildResult(kb.build_dir, release, image, log, done, time.monotonic() - start, report)
