"""Distributed compiles with distcc or icecream. The launcher goes in as ccache's
CCACHE_PREFIX (a cache hit never leaves the machine; without ccache, a folder of
`gcc -> launcher` links goes first on PATH), so make's command lines, and with them the
objects, are those of a local build. What ran where is read back from the launcher's own
log: a per-build DISTCC_LOG, or icecc's ICECC_LOGFILE."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distkernel.build.compile.icecc_env import icecc_environment
from distkernel.build.compile.launcher_log import PUMP_FAILED, read_distcc, read_icecc
from distkernel.build.recipe_model import BuildSpec, distcc_host_problem
from distkernel.core.errors import UserError
from distkernel.core.tools import call, require


@dataclass(frozen=True)
class Distribution:
    """Where a build's compiles go: a backend and, for distcc, its host words."""

    backend: str  # "distcc" or "icecream"
    hosts: tuple[str, ...] = ()
    origin: str = ""  # where the hosts were given: build.hosts, DISTCC_HOSTS or --distcc

    def slots(self) -> int:
        """distcc's own count of job slots over its hosts (`distcc -j`); 0 for icecream,
        whose scheduler hands out hosts as they free up."""
        if self.backend != "distcc":
            return 0
        out = call(["distcc", "-j"], env={**os.environ, "DISTCC_HOSTS": " ".join(self.hosts)}, what="distcc -j")
        words = out.output.split()
        return int(words[0]) if words and words[0].isdigit() else 0


def parse_hosts(text: str, origin: str) -> tuple[str, ...]:
    """A DISTCC_HOSTS-style list (words separated by blanks), each word checked."""
    words = tuple(text.split())
    if not words:
        raise UserError(f"{origin}: no distcc host given; name at least one (HOST[:PORT][/LIMIT])")
    for word in words:
        if problem := distcc_host_problem(word):
            raise UserError(f"{origin}: {problem}")
    return words


def choose(spec: BuildSpec, environ: Mapping[str, str]) -> Distribution | None:
    """The recipe's (or `--distcc`'s) choice; a distcc build's hosts are the recipe's,
    else $DISTCC_HOSTS."""
    if spec.distribute == "local":
        return None
    if spec.distribute == "icecream":
        require("icecc")
        return Distribution("icecream")
    require("distcc")
    if spec.hosts:
        return Distribution("distcc", spec.hosts, "build.hosts")
    if environ.get("DISTCC_HOSTS", "").strip():
        return Distribution("distcc", parse_hosts(environ["DISTCC_HOSTS"], "DISTCC_HOSTS"), "DISTCC_HOSTS")
    raise UserError(
        'build.distribute = "distcc" has no hosts: set build.hosts in the recipe, DISTCC_HOSTS, '
        "or give `build --distcc HOSTS`"
    )


@dataclass(frozen=True)
class Report:
    """What ran where, from the launcher's log."""

    backend: str
    hosts: tuple[str, ...]
    remote: dict[str, int]  # host -> compile jobs that ran there
    local: int  # compile jobs that ran on this machine (what distcc or icecc kept or fell back to)
    failed: dict[str, int]  # host -> compile jobs it failed (died with them, or refused them)
    fell_back: int = 0  # jobs compiled here because a host failed
    retried: int = 0  # jobs a failed host lost that another host compiled
    pump: bool = False
    notes: tuple[str, ...] = ()
    log: Path | None = None

    @property
    def remote_jobs(self) -> int:
        return sum(self.remote.values())

    @property
    def share(self) -> float:
        """The share of the compile jobs that ran remotely (ccache hits never count)."""
        total = self.remote_jobs + self.local
        return self.remote_jobs / total if total else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "hosts": list(self.hosts),
            "remote_jobs": self.remote_jobs,
            "local_jobs": self.local,
            "remote_share": round(self.share, 4),
            "per_host": dict(sorted(self.remote.items())),
            "failed_hosts": dict(sorted(self.failed.items())),
            "fell_back_jobs": self.fell_back,
            "retried_jobs": self.retried,
            "pump": self.pump,
            "notes": list(self.notes),
            "log": str(self.log) if self.log else None,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Report:
        """The report a `build --json` printed (its "distributed" object)."""
        return cls(
            str(doc["backend"]),
            tuple(map(str, doc["hosts"])),
            {str(h): int(n) for h, n in doc["per_host"].items()},
            int(doc["local_jobs"]),
            {str(h): int(n) for h, n in doc["failed_hosts"].items()},
            int(doc["fell_back_jobs"]),
            int(doc.get("retried_jobs", 0)),
            bool(doc["pump"]),
            tuple(map(str, doc["notes"])),
            Path(doc["log"]) if doc.get("log") else None,
        )

    def lines(self) -> list[str]:
        per_host = ", ".join(f"{h}: {n}" for h, n in sorted(self.remote.items())) or "none"
        out = [
            f"{self.backend}{' (pump mode)' if self.pump else ''}: {self.remote_jobs} of "
            f"{self.remote_jobs + self.local} compile jobs ran remotely ({per_host}); {self.local} on this machine"
        ]
        out += [
            f"warning: host {h} failed {n} compile job(s) (died with them or refused them); the build went on"
            for h, n in sorted(self.failed.items())
        ]
        if self.retried:
            out.append(f"warning: {self.retried} compile job(s) a failed host lost were compiled on another host")
        if self.fell_back:
            out.append(f"warning: {self.fell_back} compile job(s) fell back to this machine after a host failed")
        out += list(self.notes)
        return out


@dataclass
class Launch:
    """A running distributed build: the environment its make gets, and its log."""

    dist: Distribution
    env: dict[str, str]
    log: Path
    pump: bool = False
    notes: list[str] = field(default_factory=list)

    def report(self) -> Report:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        if self.dist.backend == "distcc":
            counts = read_distcc(text, self.dist.hosts)
            if self.pump and PUMP_FAILED in text:
                self.notes.append(
                    "note: distcc-pump's include server failed on some files; distcc preprocessed those here"
                )
        else:
            counts = read_icecc(text)
        return Report(
            self.dist.backend,
            self.dist.hosts,
            counts.remote,
            counts.local,
            counts.failed,
            counts.fell_back,
            counts.retried,
            self.pump,
            tuple(self.notes),
            self.log,
        )


def _masquerade(folder: Path, launcher: str, compilers: tuple[str, ...]) -> str:
    """A folder of `COMPILER -> launcher` links (distcc and icecc both find the real
    compiler further down PATH): the launcher without changing make's CC."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in compilers:
        link = folder / name
        link.unlink(missing_ok=True)
        link.symlink_to(launcher)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


@contextlib.contextmanager
def launched(dist: Distribution, work: Path, compiler: str, ccache: bool) -> Iterator[Launch]:
    """The environment of a distributed `make` in WORK (its own state folder and log),
    for COMPILER (gcc or a cross gcc); a pump include server runs while it is open."""
    state = work / dist.backend
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    log = work / "logs" / f"{dist.backend}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    launcher = require("distcc" if dist.backend == "distcc" else "icecc")
    env: dict[str, str] = {}
    if ccache:
        env["CCACHE_PREFIX"] = launcher
    else:
        env["PATH"] = _masquerade(state / "bin", launcher, tuple(dict.fromkeys(("gcc", "cc", compiler))))
    if dist.backend == "icecream":
        env.update(ICECC_VERSION=str(icecc_environment(compiler)), ICECC_DEBUG="debug", ICECC_LOGFILE=str(log))
        yield Launch(dist, env, log)
        return
    # DISTCC_DIR: distcc's locks and host back-off notes, fresh for each build.
    env.update(DISTCC_HOSTS=" ".join(dist.hosts), DISTCC_LOG=str(log), DISTCC_DIR=str(state), DISTCC_FALLBACK="1")
    launch = Launch(dist, env, log)
    with _pump(launch, state, compiler):
        yield launch


@contextlib.contextmanager
def _pump(launch: Launch, state: Path, compiler: str) -> Iterator[None]:
    """distcc's pump mode (preprocessing on the hosts) when every host allows it
    (`,cpp,lzo`) and distcc-pump's include server passes a probe: a file compiled through
    it must come back byte-identical to a local compile (same __FILE__ under
    -fmacro-prefix-map, same debug info). Otherwise plain mode, and the report says why."""
    if not all(",cpp" in h and ",lzo" in h for h in launch.dist.hosts):
        yield
        return
    pump = shutil.which("distcc-pump") or shutil.which("pump")
    if pump is None:
        launch.notes.append("note: the hosts allow pump mode but distcc-pump is not installed; plain mode")
        yield
        return
    base = {**os.environ, **launch.env}
    started = call([pump, "--startup"], env=base, ok=None, timeout=60, what="distcc-pump --startup")
    exports = dict(re.findall(r"^export (\w+)='([^']*)'$", started.output, re.MULTILINE))
    if started.code != 0 or "INCLUDE_SERVER_PORT" not in exports:
        launch.notes.append("note: distcc-pump's include server did not start; plain mode")
        yield
        return
    try:
        why = _probe_pump({**base, **exports}, state, compiler)
        if why:
            launch.notes.append(f"note: pump mode off ({why}); plain mode")
        else:
            launch.env.update(exports)
            launch.pump = True
        if why:
            call([pump, "--shutdown"], env={**base, **exports}, ok=None, timeout=60)
        yield
    finally:
        if launch.pump:
            call([pump, "--shutdown"], env={**base, **exports}, ok=None, timeout=60)


def _probe_pump(env: dict[str, str], state: Path, compiler: str) -> str:
    """Why pump mode cannot be trusted here ("" when it can)."""
    probe = state / "probe"
    probe.mkdir(exist_ok=True)
    (probe / "probe.c").write_text("const char *where(void) { return __FILE__; }\n")
    args = [compiler, "-g", "-O2", f"-fmacro-prefix-map={probe}/=", "-c", str(probe / "probe.c"), "-o"]
    probe_log = probe / "distcc.log"
    pumped = call(["distcc", *args, str(probe / "pump.o")], env={**env, "DISTCC_LOG": str(probe_log)}, ok=None)
    here = call([*args, str(probe / "local.o")], ok=None)
    text = probe_log.read_text(errors="replace") if probe_log.is_file() else ""
    if pumped.code != 0 or here.code != 0:
        return "the probe compile failed"
    if PUMP_FAILED in text:
        return "distcc-pump's include server fails on this system"
    if not read_distcc(text, ()).remote:
        return "the probe compile found no host"
    if (probe / "pump.o").read_bytes() != (probe / "local.o").read_bytes():
        return "a pump-mode object differs from a local one"
    return ""
