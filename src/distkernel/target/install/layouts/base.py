"""What every boot layout shares: the protocol a layout module implements (`LAYOUT =
Layout(name, place, shared, remove)`), its inputs and outputs, the staging helpers, and
the one point where text for a file the boot loader reads is made (`boot_text`).
Layout modules import this module, never the package, so the package can import them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distkernel.core.cache import CHUNK, sha256_bytes
from distkernel.core.paths import one_line
from distkernel.target.install import counting
from distkernel.target.install.state import KernelRecord, PlacedFile, State, on_disk
from distkernel.target.install.target import Target, layouts_data
from distkernel.target.install.transaction import Transaction


@dataclass(frozen=True)
class KernelFiles:
    """A kernel's staged inputs to a layout."""

    release: str
    image: Path
    initrd: Path | None
    system_map: Path
    config: Path
    cmdline: str
    arch: str


@dataclass
class Placement:
    image: str = ""
    initrd: str = ""
    entry: str = ""
    uki: str = ""
    uki_signer: str = ""  # subject of the db certificate that signed the UKI; "" when unsigned
    files: list[PlacedFile] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)  # folders owned whole by this kernel


@dataclass(frozen=True)
class Shared:
    """A file naming the default kernel: bytes or a symlink target. `owned` ones are
    deleted when no kernel needs them; others (loader.conf) were the user's first."""

    data: bytes | None = None
    link: str | None = None
    owned: bool = True
    mode: int | None = None  # of `data`, when it matters (an /etc/grub.d script runs only when executable)


def spec(layout: str) -> dict[str, Any]:
    data = layouts_data()
    own: dict[str, Any] = data[layout]
    base = own.get("base")
    return {**data[base], **own} if base else own


def stage_file(tx: Transaction, src: Path, final: str, placement: Placement) -> None:
    """Copy `src` to a staging name of `final`, hashing as it goes."""
    staged = tx.stage(final)
    h = hashlib.sha256()
    with open(src, "rb") as i, open(staged, "wb") as o:
        while chunk := i.read(CHUNK):
            h.update(chunk)
            o.write(chunk)
    tx.put(staged, final)
    placement.files.append(PlacedFile(final, sha256=h.hexdigest()))


def stage_bytes(tx: Transaction, data: bytes, final: str, *, edit: bool = False, mode: int | None = None) -> PlacedFile:
    """Stage DATA as FINAL; EDIT: FINAL is a file of the user's we rewrite (loader.conf).
    MODE: its permission bits (None: as a new file gets them; an ESP's FAT has no others)."""
    staged = tx.stage(final)
    tx.write(staged, data)
    if mode is not None:
        staged.chmod(mode)
    tx.put(staged, final, edit=edit)
    return PlacedFile(final, sha256=sha256_bytes(data))


def boot_text(path: str, lines: Iterable[str]) -> bytes:
    """The text of a file a boot loader reads (an entry, loader.conf, grub.cfg, a UKI's
    .cmdline), one line per item: the one point where a newline or control character in
    a release, a title or a command line is refused, whatever it came from."""
    return "".join(one_line(line, f"{path}: the line {line.split(maxsplit=1)[:1]}") + "\n" for line in lines).encode()


def stage_link(tx: Transaction, target: str, final: str) -> PlacedFile:
    staged = tx.stage(final)
    os.symlink(target, staged)
    tx.put(staged, final)
    return PlacedFile(final, link=target)


def on_partition(rel: str, partition: str) -> str:
    """`rel` (root-relative) as a boot loader sees it from the top of `partition`."""
    return "/" + os.path.relpath(rel, partition)


def group_default(state: State, layouts: tuple[str, ...]) -> tuple[KernelRecord | None, KernelRecord | None]:
    """The default and previous kernel among those of `layouts` (newest first)."""
    mine = [k for k in state.ordered() if k.layout in layouts and k.bootable]
    default = next((k for k in mine if k.release == state.default), mine[0] if mine else None)
    previous = next((k for k in mine if k is not default), None)
    return default, previous


def counted_path(rel: str, s: dict[str, Any]) -> str:
    """REL with the layout's boot counter (its `tries`; 0: none) in its file name."""
    return os.path.join(os.path.dirname(rel), counting.counted(os.path.basename(rel), int(s.get("tries", 0))))


def remove_files(tx: Transaction, record: KernelRecord, keep: Collection[str] = ()) -> None:
    """Delete a kernel's files and folders, except the paths in KEEP (a reinstall's). A
    file that no longer holds what was placed there is someone else's now: it stays. A
    boot entry is deleted under the name its counter has now."""
    for f in record.files:
        now = f.path if f.link else counting.find(tx.root, f.path) or f.path
        if now not in keep and on_disk(tx.root, f):
            tx.delete(now)
    for d in record.dirs:
        if d not in keep:
            tx.delete(d)


def bless(tx: Transaction, record: KernelRecord) -> KernelRecord:
    """Stage the renaming of RECORD's boot-counted files to their names without a counter
    (what systemd-bless-boot does after a good boot); the record with the new names."""
    renamed: dict[str, str] = {}
    files = []
    for f in record.files:
        now = None if f.link else counting.find(tx.root, f.path)
        if now is None or counting.plain(now) == now or not on_disk(tx.root, f):
            files.append(dataclasses.replace(f, path=now or f.path))
            continue
        plain = counting.plain(now)
        placement = Placement()
        stage_file(tx, tx.root / now, plain, placement)
        tx.delete(now)
        files.append(placement.files[0])
        renamed[f.path] = plain
    fields = {k: renamed.get(getattr(record, k), getattr(record, k)) for k in ("image", "entry", "uki")}
    return dataclasses.replace(record, files=tuple(files), **fields)


def no_shared(target: Target, state: State) -> dict[str, Shared]:
    return {}


@dataclass(frozen=True)
class Layout:
    """A boot layout: `place` stages one kernel's boot files, `writes` names the files
    it and `shared` may create or replace for a release (checked before anything is
    written: none may be a file distkernel did not create), `shared` says which files
    naming the default kernel the layouts in use want for a state, `remove` stages the
    removal of one kernel's files. Its paths are the table of the same name in
    data/layouts.toml."""

    name: str
    place: Callable[[Transaction, Target, KernelFiles], Placement]
    writes: Callable[[Target, str], list[str]]
    shared: Callable[[Target, State], dict[str, Shared]] = no_shared
    remove: Callable[[Transaction, KernelRecord, Collection[str]], None] = remove_files
