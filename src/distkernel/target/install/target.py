"""What an install needs to know about its target root: where modules, headers and boot
files go (merged /usr, ESP or /boot), the entry token, the default command line, and
which layout /etc/kernel/install.conf or the root's own files ask for."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.core.errors import UserError
from distkernel.target.kernel_install import InstallConf, read_install_conf, read_shell_vars

LAYOUTS = ("plain", "grub", "bls", "uki")


@cache
def layouts_data() -> dict[str, Any]:
    return tomllib.loads(resources.files("distkernel.target.data").joinpath("layouts.toml").read_text())


def _first_line(path: Path) -> str:
    try:
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                return line.strip()
    except (FileNotFoundError, NotADirectoryError):
        pass
    return ""


@dataclass(frozen=True)
class Target:
    root: Path
    modules_base: str  # "usr/lib/modules" on a merged-/usr root, else "lib/modules"
    boot: str  # "boot"
    esp: str  # "efi", "boot/efi", or "boot" when there is no ESP
    token: str
    machine_id: str
    is_host: bool  # the root is this machine's /

    @classmethod
    def probe(cls, root: Path) -> Target:
        root = root.resolve()
        if not root.is_dir():
            raise UserError(f"--root {root}: not a directory; create it or pass the root of the system to install into")
        lib = root / "lib"
        merged = lib.is_symlink() and os.readlink(lib).strip("/") == "usr/lib"
        data = layouts_data()
        esp = next((c for c in data["esp"] if _is_esp(root / c)), "boot")
        machine_id = _first_line(root / "etc/machine-id")
        token = _first_line(root / "etc/kernel/entry-token") or machine_id
        if not token:
            token = read_shell_vars(_os_release_path(root))[0].get("ID", "") or data["token_fallback"]
        return cls(
            root, "usr/lib/modules" if merged else "lib/modules", "boot", esp, token, machine_id, root == Path("/")
        )

    def path(self, rel: str) -> Path:
        return self.root / rel

    def fmt(self, template: str, release: str) -> str:
        return template.format(boot=self.boot, esp=self.esp, token=self.token, release=release)

    def modules_dir(self, release: str) -> str:
        return f"{self.modules_base}/{release}"

    def headers_dir(self, release: str) -> str:
        return f"usr/src/linux-headers-{release}"

    def install_conf(self) -> InstallConf:
        return read_install_conf(self.root)

    def default_cmdline(self) -> str:
        """/etc/kernel/cmdline (kernel-install's), else /usr/lib/kernel/cmdline, else empty."""
        for rel in ("etc/kernel/cmdline", "usr/lib/kernel/cmdline"):
            p = self.root / rel
            if p.exists():
                return " ".join(p.read_text().split())
        return ""

    def os_release(self) -> bytes:
        p = _os_release_path(self.root)
        return p.read_bytes() if p.exists() else b'NAME="Linux"\nID=linux\nPRETTY_NAME="Linux"\n'

    def pretty_name(self) -> str:
        return read_shell_vars(_os_release_path(self.root))[0].get("PRETTY_NAME", "Linux")

    def choose_layout(self, requested: str | None) -> str:
        if requested:
            return _known_layout(requested, "--layout")
        install_conf = self.install_conf()
        conf = install_conf.get("layout")
        if conf:
            aliases: dict[str, str] = layouts_data()["aliases"]
            if conf not in aliases:
                raise UserError(
                    f"{install_conf.where('layout')}: layout={conf} is not supported; "
                    f"use one of: {', '.join(sorted(aliases))}"
                )
            return aliases[conf]
        for rule in layouts_data()["detect"]:
            if any((self.root / self.fmt(p, "")).exists() for p in rule["exists"]):
                return str(rule["layout"])
        return str(layouts_data()["fallback"])


def _known_layout(name: str, where: str) -> str:
    if name not in LAYOUTS:
        raise UserError(f"{where}: unknown layout {name!r}; use one of: {', '.join(LAYOUTS)}")
    return name


def _is_esp(path: Path) -> bool:
    return path.is_dir() and (os.path.ismount(path) or (path / "EFI").is_dir() or (path / "loader").is_dir())


def _os_release_path(root: Path) -> Path:
    etc = root / "etc/os-release"
    return etc if etc.exists() else root / "usr/lib/os-release"
