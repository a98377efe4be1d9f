"""Boot layouts: where a kernel's boot files go (per kernel), and the files that name
the default one (shared: links, grub.cfg, loader.conf). Paths come from
data/layouts.toml; each layout module only knows how to write its own formats."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distkernel.core.cache import CHUNK, sha256_bytes
from distkernel.target.install.state import KernelRecord, PlacedFile, State
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


def stage_bytes(tx: Transaction, data: bytes, final: str) -> PlacedFile:
    staged = tx.stage(final)
    staged.write_bytes(data)
    tx.put(staged, final)
    return PlacedFile(final, sha256=sha256_bytes(data))


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


def _placers() -> dict[str, Callable[[Transaction, Target, KernelFiles], Placement]]:
    from distkernel.target.install.layouts import bls, grub, plain, uki

    return {"plain": plain.place, "grub": grub.place, "bls": bls.place, "uki": uki.place}


def place(layout: str, tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    return _placers()[layout](tx, target, files)


def shared_files(target: Target, state: State) -> dict[str, Shared]:
    """Every shared file the layouts in use want, from the state after the change."""
    from distkernel.target.install.layouts import bls, grub, plain

    out: dict[str, Shared] = {}
    out.update(plain.shared(target, state))
    out.update(grub.shared(target, state))
    out.update(bls.shared(target, state))
    return out
