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
from distkernel.core.paths import plain_name
from distkernel.target.kernel_install import InstallConf, read_install_conf, read_shell_vars


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
        """A layout path: its {release} and {token} are plain names (see core.paths)."""
        if "{release}" in template:
            plain_name(release, "kernel release")
        if "{token}" in template:
            plain_name(self.token, f"{self.root}/etc/kernel/entry-token (else etc/machine-id, os-release ID)")
        return template.format(boot=self.boot, esp=self.esp, token=self.token, release=release)

    def modules_dir(self, release: str) -> str:
        return f"{self.modules_base}/{plain_name(release, 'kernel release')}"

    def headers_dir(self, release: str) -> str:
        return f"usr/src/linux-headers-{plain_name(release, 'kernel release')}"

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


def _is_esp(path: Path) -> bool:
    return path.is_dir() and (os.path.ismount(path) or (path / "EFI").is_dir() or (path / "loader").is_dir())


def _os_release_path(root: Path) -> Path:
    etc = root / "etc/os-release"
    return etc if etc.exists() else root / "usr/lib/os-release"
