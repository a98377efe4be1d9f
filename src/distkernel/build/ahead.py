"""The headers part made while the compile finishes. Once make starts the final vmlinux
links (after modpost has written Module.symvers and init/ its utsversion.h, the last
files the headers tree takes), what is left is mostly serial: kallsyms, System.map, the
boot image. A thread at the lowest priority then selects, hashes and compresses the
headers part on the core that the tail leaves idle. The package takes that frame only if
every file the headers tree holds is unchanged when make is done; otherwise the writer
makes the part again, as it does without a head start, so the bytes are the same
either way."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.package.writer import Part, prepare_part
from distkernel.build.payload import header_members, header_paths
from distkernel.core import cache

# Kbuild's short log of link-vmlinux.sh's links: `LD .tmp_vmlinux.kallsyms1` (or
# `.tmp_vmlinux1`), `LD vmlinux`; never `LD vmlinux.o`, which comes before modpost.
TAIL_LINE = re.compile(r"^  LD      (?:\.tmp_vmlinux\S*|vmlinux)$")

Stamp = dict[str, tuple[int, int, int, int]]


def _stamp(chosen: dict[str, Path]) -> Stamp:
    """Size, mtime, ctime and inode of every file the headers tree would hold."""
    out = {}
    for rel, path in chosen.items():
        st = path.lstat()
        out[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return out


class HeadersAhead:
    """Feed it make's output lines (`on_line`); `take()` after make: the headers part,
    or None when it was not made ahead or a file it holds changed since. Its files go
    when the block ends."""

    def __init__(self, kb: Kbuild, work: Path, date: int) -> None:
        self.kb, self.date = kb, date
        self.folder = work / "headers-ahead"
        self._thread: threading.Thread | None = None
        self._made: tuple[Stamp, Part] | None = None

    def __enter__(self) -> HeadersAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.folder, ignore_errors=True)

    def on_line(self, line: str) -> None:
        if self._thread is None and TAIL_LINE.match(line):
            self._thread = threading.Thread(target=self._make, name="headers-ahead", daemon=True)
            self._thread.start()

    def _make(self) -> None:
        try:
            cache.lowest_priority()  # also for the threads zstd and objcopy start
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            chosen = header_paths(self.kb)
            before = _stamp(chosen)
            members = header_members(self.kb, self.folder / "tools", chosen)
            self._made = (before, prepare_part(members, self.date, self.folder / "frame"))
        except Exception:  # a head start only: the writer makes the part again and reports what fails
            self._made = None

    def take(self) -> Part | None:
        if self._thread is None:
            return None
        self._thread.join()
        if self._made is None:
            return None
        before, part = self._made
        return part if _stamp(header_paths(self.kb)) == before else None
