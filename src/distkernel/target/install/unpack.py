"""Stage a package's payload for install in one streaming pass: the package reader
(build/package/reader.py) checks each member against the manifest before handing it
here, and this writes it at once: kernel/ into a work folder, modules/ and headers/
into their staged trees. A refusal midway raises PackageError with files already
staged: the caller's transaction throws its staging away.

Writes never follow a link: files are created O_EXCL|O_NOFOLLOW in fresh folders, and
the reader guarantees that no member lies below a symlink of the package."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.package.format import HEADERS_DIR, KERNEL_DIR, MODULES_DIR
from distkernel.build.package.reader import VerifiedPackage, check_package

CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Destinations:
    kernel: Path
    modules: Path
    headers: Path


class _File:
    def __init__(self, path: str, mode: int) -> None:
        self.fd = os.open(path, CREATE, mode & 0o755)

    def write(self, data: memoryview) -> None:
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        os.close(self.fd)


class _Staging:
    """The reader's sink: members written below their destinations as they stream."""

    def __init__(self, dest: Destinations) -> None:
        self.tops = {KERNEL_DIR: str(dest.kernel), MODULES_DIR: str(dest.modules), HEADERS_DIR: str(dest.headers)}
        self.made: set[str] = set()

    def _path(self, name: str) -> str:
        top, _, rest = name.partition("/")
        out = f"{self.tops[top]}/{rest}"
        parent = os.path.dirname(out)
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        return out

    def file(self, name: str, mode: int) -> _File:
        return _File(self._path(name), mode)

    def symlink(self, name: str, target: str) -> None:
        os.symlink(target, self._path(name))

    def directory(self, name: str) -> None:
        path = self._path(name)
        os.makedirs(path, exist_ok=True)
        self.made.add(path)


def write_payload(verified: VerifiedPackage, dest: Destinations) -> VerifiedPackage:
    """Stream the package checked earlier (the same manifest and signature, or
    PackageError) into DEST, checking every member again as it is written."""
    return check_package(verified.path, _Staging(dest), expect=verified, part=verified.part, take=verified.take)


def stage_package(path: Path, dest: Destinations) -> VerifiedPackage:
    """Check the package at PATH in one pass, writing its payload into DEST as it streams
    (for a reader that wants the files, not an install: `export`)."""
    return check_package(path, _Staging(dest))
