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

from distkernel.core.errors import ToolError
from distkernel.core.paths import PLUGINS_LOG, STATE_DIR
from distkernel.core.tools import require, tail
from distkernel.target.install.target import Target, layouts_data

INSTALL_D = ("etc/kernel/install.d", "usr/lib/kernel/install.d")
RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # run-parts' default: no dots, no backups
STOP_CHAIN = 77
LOG = PLUGINS_LOG


@dataclass(frozen=True)
class Hook:
    path: str  # as the root sees it
    args: tuple[str, ...]
    chain: bool  # kernel-install plugin: 77 stops the rest


def install_plugins(root: Path) -> list[str]:
    """*.install by name; /etc overrides /usr/lib; a link to /dev/null masks; the ones
    doing install's own job (data/layouts.toml [hooks]) are skipped, and, as kernel-install
    does, the ones that are not executable files."""
    found: dict[str, str] = {}
    for folder in reversed(INSTALL_D):
        d = root / folder
        if d.is_dir():
            for f in d.iterdir():
                if f.name.endswith(".install"):
                    found[f.name] = f"{folder}/{f.name}"
    skip = set(layouts_data()["hooks"]["skip"])
    return [rel for name, rel in sorted(found.items()) if name not in skip and _executable(root, rel)]


def _executable(root: Path, rel: str) -> bool:
    """An executable file as the root sees it (an absolute link points into the root;
    one to /dev/null masks)."""
    path = root / rel
    if path.is_symlink() and (target := os.readlink(path)).startswith("/"):
        path = root / target.lstrip("/")
    return path.is_file() and os.access(path, os.X_OK)


def run_parts(root: Path, folder: str) -> list[str]:
    d = root / folder
    if not d.is_dir():
        return []
    names = sorted(f.name for f in d.iterdir() if RUN_PARTS_NAME.match(f.name))
    return [f"{folder}/{n}" for n in names if _executable(root, f"{folder}/{n}")]


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
    files = ("/" + image, *(("/" + initrd,) if initrd else ())) if action == "add" else ()
    out = [Hook("/" + rel, (action, release, entry_dir, *files), True) for rel in install_plugins(target.root)]
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
    done = f"kernel {release} is {'installed' if action == 'add' else 'removed'}"
    with tempfile.TemporaryDirectory(dir=target.root / STATE_DIR) as staging:
        env = dict(os.environ, **kernel_install_env(target, layout, generator))
        env["KERNEL_INSTALL_STAGING_AREA"] = "/" + str(Path(staging).relative_to(target.root))
        if not chroot and not target.is_host:
            env["DISTKERNEL_ROOT"] = str(target.root)
        stopped = False
        for hook in hooks(target, action, release, image, initrd):
            if hook.chain and stopped:
                continue
            argv = [require("chroot"), str(target.root), hook.path] if chroot else [str(target.path(hook.path[1:]))]
            try:
                proc = subprocess.run([*argv, *hook.args], env=env, capture_output=True, text=True, errors="replace")
            except OSError as e:  # e.g. a script without a #! line
                why = f"cannot run ({e.strerror}); fix or remove it"
                raise ToolError(f"{done}, but the hook {hook.path} {why}") from None
            with open(log, "a") as f:
                f.write(f"$ {hook.path} {' '.join(hook.args)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]\n")
            ran.append(hook.path)
            if hook.chain and proc.returncode == STOP_CHAIN:
                stopped = True
                continue
            if proc.returncode != 0:
                lines = (proc.stdout + proc.stderr).splitlines()
                raise ToolError(
                    f"{done}, but the hook {hook.path} failed (exit {proc.returncode})",
                    log=log,
                    details=tail(lines),
                )
    return ran
