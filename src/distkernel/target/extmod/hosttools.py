"""A headers tree's host tools (fixdep, modpost...) for the machine that builds the
module. A package carries them built for its build server; when a module is built on a
machine of another ELF machine (or where they cannot start: another C library), each one
Kbuild runs is rebuilt in place with this machine's compiler from the sources the tree
ships (data/hosttools.toml), as Debian's linux-kbuild package is built per machine.
Rebuilt once per headers tree: afterwards its tools are this machine's and left alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from distkernel.core.cache import flocked
from distkernel.core.errors import ToolError
from distkernel.core.tools import run

LOCK = ".distkernel-host-tools.lock"  # in the headers tree: one rebuild per tree at a time
# What a dynamic loader says when a binary of this machine cannot start here.
NO_START = re.compile(r"error while loading shared libraries|version `GLIBC_[^']*' not found|No such file")


@dataclass(frozen=True)
class HostTool:
    path: str
    sources: tuple[str, ...]
    optional: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()
    elfconfig: str = ""


@cache
def host_tools() -> tuple[HostTool, ...]:
    raw = tomllib.loads(resources.files("distkernel.target.data").joinpath("hosttools.toml").read_text())
    return tuple(
        HostTool(
            t["path"],
            tuple(t["sources"]),
            tuple(t.get("optional", ())),
            tuple(t.get("include", ())),
            tuple(t.get("libs", ())),
            t.get("elfconfig", ""),
        )
        for t in raw["tool"]
    )


def elf_machine(path: Path) -> tuple[int, int] | None:
    """(ELF class, e_machine) of PATH, None when it is not an ELF file."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return head[4], int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


@cache
def this_machine() -> tuple[int, int] | None:
    """The running interpreter's: a binary of this machine."""
    return elf_machine(Path(os.path.realpath(sys.executable)))


def why_rebuild(tool: Path) -> str:
    """Why TOOL cannot serve on this machine ("" when it can)."""
    got, here = elf_machine(tool), this_machine()
    if got is None:
        return ""  # a script (recordmcount.pl's kin): the host runs it as it is
    if got != here:
        return f"built for ELF machine {got[1]}, this machine's is {here[1] if here else 'unknown'}"
    try:  # the same machine may still lack its C library version (run without arguments: its usage)
        with tempfile.TemporaryDirectory() as scratch:
            done = subprocess.run(
                [tool], cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
            )
    except OSError as e:
        return f"it cannot start here ({e.strerror})"
    except subprocess.TimeoutExpired:
        return ""
    err = done.stderr.decode(errors="replace")
    return f"it cannot start here ({m.group(0)})" if done.returncode == 127 and (m := NO_START.search(err)) else ""


def ensure(headers: Path, log: Path) -> tuple[str, ...]:
    """Rebuild each of HEADERS' host tools that cannot serve here; the paths rebuilt.
    ToolError when one cannot be rebuilt (its sources missing, the compiler failing)."""
    present = [t for t in host_tools() if (headers / t.path).is_file()]
    if not any(why_rebuild(headers / t.path) for t in present):
        return ()
    rebuilt: list[str] = []
    with flocked(headers / LOCK):  # another build of the same tree may have done it meanwhile
        for tool in present:
            why = why_rebuild(headers / tool.path)
            if why:
                _note(log, f"{tool.path}: {why}; rebuilding it with this machine's compiler")
                _rebuild(headers, tool, log)
                rebuilt.append(tool.path)
    return tuple(rebuilt)


def _rebuild(headers: Path, tool: HostTool, log: Path) -> None:
    missing = [s for s in tool.sources if not (headers / s).is_file()]
    if missing or not tool.sources:
        shipped = f"{', '.join(missing)} not in the headers" if missing else "its sources are not in the headers"
        raise ToolError(f"{headers / tool.path} cannot run on this machine and cannot be rebuilt: {shipped}")
    if tool.elfconfig:
        _host_elfconfig(headers / tool.elfconfig)
    sources = [*tool.sources, *(s for s in tool.optional if (headers / s).is_file())]
    includes = [f"-I{i}" for i in tool.include if (headers / i).is_dir()]
    target = headers / tool.path
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        run(["gcc", "-O2", *includes, "-o", tmp, *sources, *tool.libs], cwd=headers, log=log, what=f"gcc {tool.path}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _host_elfconfig(path: Path) -> None:
    """Rewrite the HOST_ELFCLASS/HOST_ELFDATA lines of modpost's elfconfig.h for this machine."""
    if not path.is_file():
        return
    host = {
        "HOST_ELFCLASS": "ELFCLASS64" if sys.maxsize > 2**32 else "ELFCLASS32",
        "HOST_ELFDATA": "ELFDATA2LSB" if sys.byteorder == "little" else "ELFDATA2MSB",
    }
    text = path.read_text()
    new = re.sub(
        r"^#define (HOST_ELF\w+) \S+$", lambda m: f"#define {m[1]} {host.get(m[1], m[0].split()[-1])}", text, flags=re.M
    )
    if new != text:
        path.write_text(new)


def _note(log: Path, line: str) -> None:
    with open(log, "a") as f:
        f.write(f"# {line}\n")
