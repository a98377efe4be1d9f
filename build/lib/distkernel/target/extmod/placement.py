"""Putting built modules into a kernel's modules folder: complete files only, and never
one module's file over another's."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from distkernel.core.tools import run
from distkernel.target.extmod import registry


class Claims:
    """Who installs which file into which kernel, so two modules never overwrite each
    other's .ko (within this run, and against earlier builds of other modules)."""

    def __init__(self, root: Path):
        self.root = root
        self.lock = threading.Lock()
        self.taken: dict[tuple[str, str], str] = {}  # (release, relative path) -> module
        self.loaded: set[str] = set()  # releases whose earlier builds are in `taken`

    def install(
        self, name: str, release: str, modules_dir: Path, built: Sequence[tuple[Path, str]], kept: Sequence[str]
    ) -> str:
        """Copy NAME's built modules (file, place in MODULES_DIR) there, replacing the
        files of its previous build (KEPT); "" or why it could not."""
        with self.lock:
            if release not in self.loaded:  # earlier builds, read once: this run's go through here
                self.loaded.add(release)
                for other in registry.registered(self.root):
                    status = registry.load_status(self.root, other.name, release)
                    for rel in status.files if status else ():
                        self.taken.setdefault((release, rel), other.name)
            clash = [
                (rel, self.taken[(release, rel)]) for _, rel in built if self.taken.get((release, rel), name) != name
            ]
            if clash:
                return f"{clash[0][0]} is already installed by module {clash[0][1]}"
            for _, rel in built:
                self.taken[(release, rel)] = name
        uninstall(modules_dir, kept)
        for src, rel in built:
            _copy_into(src, modules_dir / rel)
        return ""


def _copy_into(src: Path, dst: Path) -> None:
    """Complete or absent, even with other threads writing beside it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f, open(src, "rb") as s:
            shutil.copyfileobj(s, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def uninstall(modules_dir: Path, files: Sequence[str]) -> None:
    """Remove files a module installed (paths relative to MODULES_DIR)."""
    for rel in files:
        if ".." not in Path(rel).parts:
            (modules_dir / rel).unlink(missing_ok=True)


def depmod(modules_dir: Path, release: str, log: Path | None = None) -> None:
    """depmod for a modules folder wherever it is: `depmod -b BASE` when it is
    BASE/lib/modules/RELEASE, else through a symlink of that shape (a staged folder need
    not be named so). The one place distkernel runs depmod."""
    if modules_dir.parts[-3:] == ("lib", "modules", release):
        run(["depmod", "-b", modules_dir.parent.parent.parent, release], log=log, what=f"depmod {release}")
        return
    with tempfile.TemporaryDirectory(prefix="distkernel-depmod-") as tmp:
        base = Path(tmp)
        (base / "lib" / "modules").mkdir(parents=True)
        (base / "lib" / "modules" / release).symlink_to(modules_dir.resolve())
        run(["depmod", "-b", base, release], log=log, what=f"depmod {release}")
