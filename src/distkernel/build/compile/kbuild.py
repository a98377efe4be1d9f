"""How distkernel calls make: out-of-tree (O=), per-arch arguments, ccache, and a
reproducible environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.source import SourceTree
from distkernel.core import cache
from distkernel.core.arch import Arch
from distkernel.core.tools import require_compiler, run


def reproducible_env(date: int) -> dict[str, str]:
    """Fixed identity and time so the same inputs give the same bytes."""
    return {
        "KBUILD_BUILD_TIMESTAMP": f"@{date}",
        "KBUILD_BUILD_USER": "distkernel",
        "KBUILD_BUILD_HOST": "distkernel",
        "KBUILD_BUILD_VERSION": "1",
        "SOURCE_DATE_EPOCH": str(date),
        "LOCALVERSION": "",  # no "+" from setlocalversion on git trees
        "LC_ALL": "C",
        "TZ": "UTC",
    }


@dataclass(frozen=True)
class Kbuild:
    source: SourceTree
    build_dir: Path
    arch: Arch
    ccache: bool = False

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(reproducible_env(self.source.date))
        if self.ccache:
            env.update(
                {
                    "CCACHE_DIR": str(cache.cache_dir("ccache")),
                    # Boot objects are built with -g: without NOHASHDIR every new build dir misses.
                    "CCACHE_NOHASHDIR": "true",
                    "CCACHE_BASEDIR": str(cache.cache_root()),
                    "CCACHE_COMPILERCHECK": "content",
                }
            )
        return env

    def args(self) -> list[str]:
        args = ["make", "-C", str(self.source.path), f"O={self.build_dir}", *self.arch.make_args()]
        if self.ccache:
            cc = f"{self.arch.cross_compile}gcc"
            args += [f"CC=ccache {cc}", "HOSTCC=ccache gcc"]
        return args

    def make(
        self,
        *targets: str,
        log: Path,
        jobs: int = 1,
        on_line: Callable[[str], None] | None = None,
        extra: Sequence[str] = (),
    ) -> list[str]:
        require_compiler(self.arch)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.args(), f"-j{jobs}", *extra, *targets]
        return run(argv, log=log, env=self.env(), on_line=on_line, what=f"make {' '.join(targets)}")


def ccache_usable(wanted: bool) -> bool:
    return wanted and shutil.which("ccache") is not None
