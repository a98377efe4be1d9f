"""Architectures (data/arches.toml) and the make arguments that select one."""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Arch:
    name: str
    kbuild: str
    srcarch: str
    image: str
    triplet: str
    cross_package: str
    machines: tuple[str, ...]

    @property
    def native(self) -> bool:
        return platform.machine() in self.machines

    @property
    def cross_compile(self) -> str:
        return "" if self.native else f"{self.triplet}-"

    def make_args(self) -> list[str]:
        args = [f"ARCH={self.kbuild}"]
        if self.cross_compile:
            args.append(f"CROSS_COMPILE={self.cross_compile}")
        return args


@cache
def _table() -> dict[str, Arch]:
    raw = tomllib.loads(resources.files("distkernel.core.data").joinpath("arches.toml").read_text())
    return {name: Arch(name=name, **{**a, "machines": tuple(a["machines"])}) for name, a in raw.items()}


def known_arches() -> tuple[str, ...]:
    return tuple(_table())


def get_arch(name: str) -> Arch:
    return _table()[name]
