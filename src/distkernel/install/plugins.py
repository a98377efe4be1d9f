"""The root's own kernel hooks, run after a commit: systemd kernel-install plugins
(/etc/kernel/install.d/*.install and /usr/lib/kernel/install.d/*.install, `add KREL
ENTRY_DIR IMAGE [INITRD]` / `remove KREL ENTRY_DIR`, KERNEL_INSTALL_* variables, exit
77 stops the chain) then installkernel's run-parts folders (/etc/kernel/postinst.d,
postrm.d: `KREL IMAGE`). Paths are given as the root sees them; the hooks run chrooted
into the root when it has a /bin/sh, else on this machine with DISTKERNEL_ROOT set."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from distkernel.errors import ToolError
from distkernel.install.target import Target, layouts_data
from distkernel.tools import require, tail

INSTALL_D = ("etc/kernel/install.d", "usr/lib/kernel/install.d")
RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # run-parts' default: no dots, no backups
STOP_CHAIN = 77
LOG = "var/log/distkernel/plugins.log"


@dataclass(frozen=True)
class Hook:
    path: str  # as the root sees it
    args: tuple[str, ...]
    chain: bool  # kernel-install plugin: 77 stops the rest


def install_plugins(root: Path) -> list[str]:
    """*.install by name; /etc overrides /usr/lib; a link to /dev/null masks; the ones
    doing install's own job (data/layouts.toml [hooks]) are skipped."""
    found: dict[str, str] = {}
    for folder in reversed(INSTALL_D):
        d = root / folder
        if d.is_dir():
            for f in d.iterdir():
                if f.name.endswith(".install"):
                    found[f.name] = f"{folder}/{f.name}"
    skip = set(layouts_data()["hooks"]["skip"])
    return [
        rel for name, rel in sorted(found.items()) if name not in skip and os.path.realpath(root / rel) != "/dev/null"
    ]


def run_parts(root: Path, folder: str) -> list[str]:
    d = root / folder
    if not d.is_dir():
        return []
    names = sorted(f.name for f in d.iterdir() if RUN_PARTS_NAME.match(f.name))
    return [f"{folder}/{n}" for n in names if os.access(d / n, os.X_OK) and (d / n).is_file()]


def kernel_install_env(target: Target, layout: str, initrd_generator: str) -> dict[str, str]:
    return {
        "KERNEL_INSTALL_MACHINE_ID": target.machine_id,
        "KERNEL_INSTALL_ENTRY_TOKEN": target.token,
        "KERNEL_INSTALL_BOOT_ROOT": "/" + target.esp,
        "KERNEL_INSTALL_LAYOUT": layout if layout in ("bls", "uki") else "other",
        "KERNEL_INSTALL_INITRD_GENERATOR": initrd_generator,
        "KERNEL_INSTALL_UKI_GENERATOR": "ukify",
        "KERNEL_INSTALL_IMAGE_TYPE": "uki" if layout == "uki" else "pe",
        "KERNEL_INSTALL_VERBOSE": "0",
    }


def hooks(target: Target, action: str, release: str, image: str, initrd: str) -> list[Hook]:
    entry_dir = f"/{target.esp}/{target.token}/{release}"
    out = []
    for rel in install_plugins(target.root):
        args = (action, release, entry_dir, *(("/" + image,) if action == "add" else ()))
        out.append(Hook("/" + rel, args + (("/" + initrd,) if action == "add" and initrd else ()), True))
    folder = "etc/kernel/postinst.d" if action == "add" else "etc/kernel/postrm.d"
    out += [Hook("/" + rel, (release, "/" + image), False) for rel in run_parts(target.root, folder)]
    return out


def run_hooks(
    target: Target, action: str, release: str, image: str, initrd: str, layout: str, generator: str
) -> list[str]:
    """Run the hooks in order; the ones that ran. A failing hook raises ToolError."""
    chroot = not target.is_host and (target.root / "bin/sh").exists()
    log = target.path(LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    with tempfile.TemporaryDirectory(dir=target.root / "var/lib/distkernel") as staging:
        env = dict(os.environ, **kernel_install_env(target, layout, generator))
        env["KERNEL_INSTALL_STAGING_AREA"] = "/" + str(Path(staging).relative_to(target.root))
        if not chroot and not target.is_host:
            env["DISTKERNEL_ROOT"] = str(target.root)
        stopped = False
        for hook in hooks(target, action, release, image, initrd):
            if hook.chain and stopped:
                continue
            argv = [require("chroot"), str(target.root), hook.path] if chroot else [str(target.path(hook.path[1:]))]
            proc = subprocess.run([*argv, *hook.args], env=env, capture_output=True, text=True, errors="replace")
            with open(log, "a") as f:
                f.write(f"$ {hook.path} {' '.join(hook.args)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]\n")
            ran.append(hook.path)
            if hook.chain and proc.returncode == STOP_CHAIN:
                stopped = True
                continue
            if proc.returncode != 0:
                lines = (proc.stdout + proc.stderr).splitlines()
                raise ToolError(
                    f"kernel {release} is {'installed' if action == 'add' else 'removed'}, but the hook "
                    f"{hook.path} failed (exit {proc.returncode})",
                    log=log,
                    details=tail(lines),
                )
    return ran
