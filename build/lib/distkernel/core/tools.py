"""The system tools distkernel needs (data/tools.toml): which are present, how to get
the rest, and the one place that runs them and turns failures into ToolErrors: `run`
for tools whose output streams to a log line by line, `call` for tools whose output is
read as a whole (or sent to a file), with the exit codes the caller accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any

from distkernel.core.arch import Arch
from distkernel.core.errors import ToolError


@dataclass(frozen=True)
class Tool:
    name: str
    check: str
    package: str
    purpose: str
    required: bool

    def location(self) -> str | None:
        if self.check.startswith("/"):
            return self.check if os.path.exists(self.check) else None
        return shutil.which(self.check)


@cache
def known_tools() -> tuple[Tool, ...]:
    raw = tomllib.loads(resources.files("distkernel.core.data").joinpath("tools.toml").read_text())
    return tuple(Tool(name, t["check"], t["package"], t["for"], t["need"] == "required") for name, t in raw.items())


def install_command(packages: Sequence[str]) -> str:
    return "apt-get install -y --no-install-recommends " + " ".join(sorted(set(packages)))


def package_for(executable: str) -> str | None:
    for tool in known_tools():
        if tool.check == executable or os.path.basename(tool.check) == executable:
            return tool.package
    return None


def missing_tool_error(executable: str) -> ToolError:
    pkg = package_for(executable)
    fix = f"install it: {install_command([pkg])}" if pkg else "install it"
    return ToolError(f"required tool `{executable}` not found; {fix} (or run ./bootstrap)")


def require(executable: str) -> str:
    found = shutil.which(executable)
    if not found:
        raise missing_tool_error(executable)
    return found


def require_compiler(arch: Arch) -> None:
    """A cross build needs the triplet's gcc: say which package has it (arches.toml)."""
    if arch.cross_compile and shutil.which(f"{arch.cross_compile}gcc") is None:
        raise ToolError(
            f"kernel.arch = {arch.name}: the cross compiler `{arch.cross_compile}gcc` is not installed; "
            f"install it: {install_command([arch.cross_package])}"
        )


def tail(lines: Sequence[str], n: int = 15) -> list[str]:
    """The last error lines of a log, else its last lines."""
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return list(errors[-n:] if errors else lines[-n:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    what: str | None = None,
) -> list[str]:
    """Run a tool, stdout and stderr merged into `log` (appended), and return its
    output lines. A missing tool or a non-zero exit raises ToolError naming the log."""
    argv = [os.fspath(c) for c in cmd]
    if shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
        raise missing_tool_error(argv[0])
    kept: list[str] = []
    logf = open(log, "a") if log else None  # noqa: SIM115 - closed below
    try:
        if logf:
            logf.write("$ " + " ".join(argv) + "\n")
            logf.flush()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            kept.append(line)
            if logf:
                logf.write(line + "\n")
            if on_line:
                on_line(line)
        code = proc.wait()
    finally:
        if logf:
            logf.close()
    if code != 0:
        raise ToolError(f"{what or argv[0]} failed (exit {code})", log=log, details=tail(kept))
    return kept


@dataclass(frozen=True)
class Finished:
    """What `call` returns: the exit code and the captured output (stdout and stderr
    merged, unless stdout went to a file)."""

    code: int
    output: str


def call(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    ok: Container[int] | None = (0,),
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO[Any] | None = None,
    pass_fds: Sequence[int] = (),
    timeout: float | None = None,
    what: str | None = None,
) -> Finished:
    """Run a tool whose output the caller reads as a whole (or sends to `stdout`, a file).
    A missing tool raises ToolError; so does an exit code not in `ok` (None: the caller
    judges every code), or running past `timeout` seconds."""
    argv = [os.fspath(c) for c in cmd]
    # A tool named by itself is looked up on PATH; one given by its path (a hook, say) is
    # run as it is, and an OSError from starting it is the caller's to word.
    if os.sep not in argv[0] and shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
        raise missing_tool_error(argv[0])
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if stdout is None else subprocess.PIPE,
            pass_fds=tuple(pass_fds),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what or argv[0]} did not finish within {timeout:g} s") from None
    text = (proc.stdout if stdout is None else proc.stderr or b"").decode(errors="replace")
    if ok is not None and proc.returncode not in ok:
        raise ToolError(f"{what or argv[0]} failed (exit {proc.returncode})", details=tail(text.splitlines()))
    return Finished(proc.returncode, text)
