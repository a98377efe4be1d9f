"""What every export format shares: the layout data, the package checked and staged
in one pass by the strict reader, the staged tree made reproducible, and outputs
moved into place only once all of them are written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.build.package.format import KERNEL_FILES, Metadata
from distkernel.build.package.reader import read_head
from distkernel.core.errors import UserError
from distkernel.target.install.unpack import Destinations, stage_package


@dataclass(frozen=True)
class Exported:
    """One file an export wrote."""

    path: Path
    package: str  # the package's name in its package manager
    version: str
    size: int


@cache
def layout() -> dict[str, Any]:
    """workflows/data/export.toml: what each format's layout and scripts are."""
    return tomllib.loads(resources.files("distkernel.workflows.data").joinpath("export.toml").read_text())


def head(package: Path) -> Metadata:
    """The metadata, to refuse a package a format cannot name before anything is
    staged; the whole package is judged by `stage`."""
    return read_head(package).metadata


@dataclass(frozen=True)
class Staged:
    metadata: Metadata
    kernel: Path  # vmlinuz, System.map, config
    config: str  # the kernel's .config text


def stage(package: Path, work: Path, modules: Path, headers: Path) -> Staged:
    """Check PACKAGE with the strict reader while its payload streams into place:
    kernel/ into WORK/kernel, modules/ into MODULES, headers/ into HEADERS."""
    kernel = work / "kernel"
    verified = stage_package(package, Destinations(kernel, modules, headers))
    for folder in (kernel, modules, headers):
        folder.mkdir(parents=True, exist_ok=True)  # a package may have no modules or headers
    config = (kernel / Path(KERNEL_FILES[2]).name).read_text(errors="replace")
    return Staged(verified.metadata, kernel, config)


def enabled(config: str, option: str) -> bool:
    return f"\n{option}=y\n" in f"\n{config}"


def normalize(tree: Path, epoch: int) -> None:
    """Modes and times that do not depend on this machine's umask or clock: folders
    0755, files 0644 or 0755 (the package recorded which), every mtime EPOCH."""
    for top, dirs, files in os.walk(tree):
        os.chmod(top, 0o755)
        for name in files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
            os.utime(path, (epoch, epoch), follow_symlinks=False)
        for name in dirs:
            path = os.path.join(top, name)
            if os.path.islink(path):
                os.utime(path, (epoch, epoch), follow_symlinks=False)
    for top, _, _ in os.walk(tree, topdown=False):
        os.utime(top, (epoch, epoch))


@contextlib.contextmanager
def workspace(out: Path) -> Iterator[Path]:
    """A private folder inside OUT (so the final rename stays on one file system),
    removed whatever happens."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the folder: {e.strerror}; choose another") from None
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(built: list[tuple[Path, Exported]]) -> list[Exported]:
    """Move every built file (BUILT: staged path, its final record) into place, once all
    of them exist: a failed export leaves none of its files half-written."""
    for staged, final in built:
        os.replace(staged, final.path)
    return [final for _, final in built]
