"""How distkernel calls make, the one Kbuild driver: the kernel's own build (out-of-tree
O=, per-arch arguments, ccache, a reproducible environment) and makes against a built
kernel's tree for external modules (its toolchain variables, our jobserver, the working
folder as PWD), with the first real error of a failed one."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.source import SourceTree
from distkernel.core import cache
from distkernel.core.arch import Arch
from distkernel.core.tools import Finished, call, require_compiler, run

# What a make against a kernel tree must not inherit: make's own recursion state (it gets
# our jobserver instead), the compiler settings dkms unsets (CC CXX CFLAGS CXXFLAGS
# LDFLAGS), and what Kbuild reads from the environment (the kernel's values are given).
CLIENT_ENV_DROP = (
    *("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"),
    *("CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS"),
    *("ARCH", "CROSS_COMPILE", "LLVM", "KERNELRELEASE", "KBUILD_OUTPUT"),
)

# A failed make's reason: the first line a compiler, linker or modpost marks as an
# error, else the first make `*** ... Stop.`, else a shell's complaint. Never a line that
# merely contains "error" (with V=1 that is a gcc command line holding -Werror=...).
_ERROR_LINES = (
    re.compile(r"^[^\s:]+:\d+(?::\d+)?: (?:fatal )?error: "),  # file.c:12:5: error: ...
    re.compile(r"^(?:[^\s:]+: )?(?:fatal )?error: "),  # cc1: error: ..., ld: error: ..., error: ...
    re.compile(r"^ERROR: "),  # ERROR: modpost: "sym" [mod.ko] undefined!
)
_STOP_LINE = re.compile(r"\*\*\* (?!\[).*\.  Stop\.$")
_SHELL_LINE = re.compile(r": (?:command not found|No such file or directory|Permission denied)$")


def make_vars(arch: Arch | None, clang: bool = False) -> list[str]:
    """The make variables that select a kernel's toolchain: ARCH, CROSS_COMPILE, and
    LLVM=1 for a clang-built kernel (none for an unknown arch: make picks the host's)."""
    out = arch.make_args() if arch else []
    if clang:
        out.append("LLVM=1")
    return out


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
    # A distributed compile's variables (build/compile/distribute.py), set last: the
    # launcher goes in through the environment, so make's command lines stay local ones.
    launch: tuple[tuple[str, str], ...] = ()
    # make -j of every make run here (0: this machine's cores). The config targets and
    # modules_install compile host tools and strip modules too: serial, they cost a
    # cold build ~1.5 s against the same steps made with -j by hand (bench/build_vs_hand.py).
    jobs: int = 0

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
        env.update(self.launch)
        return env

    def args(self) -> list[str]:
        args = ["make", "-C", str(self.source.path), f"O={self.build_dir}", *make_vars(self.arch)]
        if self.ccache:
            cc = f"{self.arch.cross_compile}gcc"
            args += [f"CC=ccache {cc}", "HOSTCC=ccache gcc"]
        return args

    def make(
        self,
        *targets: str,
        log: Path,
        jobs: int = 0,
        on_line: Callable[[str], None] | None = None,
        extra: Sequence[str] = (),
    ) -> list[str]:
        require_compiler(self.arch)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        # A caller's jobserver (`distkernel matrix` runs several builds on one pool of
        # cores) replaces -j: make takes its job slots from the inherited pipe.
        fds = jobserver_fds(os.environ.get("MAKEFLAGS", ""))
        jobs = jobs or self.jobs or os.cpu_count() or 1
        argv = [*self.args(), *([] if fds else [f"-j{jobs}"]), *extra, *targets]
        return run(argv, log=log, env=self.env(), on_line=on_line, what=f"make {' '.join(targets)}", pass_fds=fds)


def jobserver_fds(makeflags: str) -> tuple[int, ...]:
    """The pipe of a jobserver MAKEFLAGS hands down (`--jobserver-auth=R,W`), when open."""
    m = re.search(r"--jobserver-auth=(\d+),(\d+)", makeflags)
    if not m:
        return ()
    fds = (int(m.group(1)), int(m.group(2)))
    try:
        for fd in fds:
            os.fstat(fd)
    except OSError:
        return ()
    return fds


def ccache_usable(wanted: bool) -> bool:
    return wanted and shutil.which("ccache") is not None


def client_env(makeflags: str, cwd: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a make (or a script running makes) that takes its job slots
    from our jobserver (MAKEFLAGS), run in CWD with PWD saying so: Makefiles that use
    $(PWD) then see their own folder, never the caller's."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
    env.update(MAKEFLAGS=makeflags, LC_ALL="C", PWD=str(cwd))
    env.update(extra or {})
    return env


def external_modules_argv(headers: Path, folder: Path, variables: Sequence[str]) -> list[str]:
    """Kbuild's external module build: the modules of FOLDER (M=) against HEADERS."""
    return ["make", "-C", str(headers), f"M={folder}", *variables, "modules"]


def run_client(
    argv: Sequence[str], cwd: Path, makeflags: str, fds: Sequence[int], extra_env: Mapping[str, str] | None = None
) -> Finished:
    """Run ARGV in CWD as a client of the jobserver whose pipe is FDS; its exit code and
    output (stdout and stderr merged), whatever the code."""
    env = client_env(makeflags, cwd, extra_env)
    return call(argv, ok=None, cwd=cwd, env=env, pass_fds=fds, what=os.path.basename(argv[0]))


def first_error(output: str) -> str:
    """The real reason a make failed, from its output ("" when it names none)."""
    lines = output.splitlines()
    for pattern in (_ERROR_LINES, (_STOP_LINE,), (_SHELL_LINE,)):
        for line in lines:
            if any(p.search(line) for p in pattern):
                return line.strip()
    return ""
