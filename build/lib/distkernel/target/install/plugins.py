"""The root's own kernel hooks: systemd kernel-install plugins (/etc/kernel/install.d and
/usr/lib/kernel/install.d *.install, `add KREL ENTRY_DIR IMAGE [INITRD]` / `remove KREL
ENTRY_DIR`, KERNEL_INSTALL_* variables, exit 77 stops the chain), run after a commit, and
Debian's run-parts folders (/etc/kernel/{preinst,postinst,header_postinst,prerm,postrm}.d)
with what Debian's kernel packages give them: `KREL /boot/vmlinuz-KREL` and
DEB_MAINT_PARAMS (data/hooks.toml). Hooks that would redo install's own work are skipped
as data (data/hooks.toml [[skip]]).

Where they run: on this machine only when the root is /. A root's hooks run chrooted
into it (their own /bin/sh and tools, in a private mount and pid namespace with a
minimal /dev, /proc and /tmp of their own), which needs a /bin/sh in the root and root
privileges; otherwise each is skipped with a warning naming it. Never on this machine
with the root's paths: a hook would act on this machine's /boot and /lib/modules."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from distkernel.core.errors import ToolError
from distkernel.core.paths import PLUGINS_LOG, STATE_DIR
from distkernel.core.tools import call, require, tail
from distkernel.target.install.layouts import spec
from distkernel.target.install.target import Target

INSTALL_D = ("etc/kernel/install.d", "usr/lib/kernel/install.d")
RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # run-parts' default: no dots, no backups
STOP_CHAIN = 77
LOG = PLUGINS_LOG
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Run inside a private mount + pid namespace: the root's /dev, /proc and /tmp (when it has
# those folders) get a minimal /dev of this machine's harmless nodes, a proc of the new pid
# namespace and an empty tmpfs, all gone when the hook ends; then chroot. $1 is the root.
CHROOT_SCRIPT = """set -e
r=$1; shift
if [ -d "$r/dev" ] && [ ! -L "$r/dev" ]; then
    mount -t tmpfs -o mode=755,size=64k,nosuid,noexec distkernel-dev "$r/dev"
    for n in null zero full random urandom; do : > "$r/dev/$n"; mount --bind "/dev/$n" "$r/dev/$n"; done
    ln -s /proc/self/fd "$r/dev/fd"
    ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
fi
if [ -d "$r/proc" ] && [ ! -L "$r/proc" ]; then mount -t proc -o nosuid,nodev,noexec proc "$r/proc"; fi
if [ -d "$r/tmp" ] && [ ! -L "$r/tmp" ]; then mount -t tmpfs -o mode=1777,nosuid,nodev distkernel-tmp "$r/tmp"; fi
exec chroot "$r" "$@"
"""


@cache
def hooks_data() -> dict[str, Any]:
    return tomllib.loads(resources.files("distkernel.target.data").joinpath("hooks.toml").read_text())


def skip_reason(key: str) -> str | None:
    """Why distkernel does not run the hook FOLDER/NAME (data/hooks.toml), or None."""
    return next((str(s["why"]) for s in hooks_data()["skip"] if s["hook"] == key), None)


@dataclass(frozen=True)
class Hook:
    path: str  # as the root sees it
    args: tuple[str, ...]
    chain: bool  # kernel-install plugin: 77 stops the rest
    env: tuple[tuple[str, str], ...] = ()


def in_root(root: Path, rel: str) -> Path:
    """`rel` as the root sees it: every symlink on the way (absolute ones too) resolved
    inside the root, never on this machine."""
    cur = ""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = f"{cur}/{part}" if cur else part
        if (root / nxt).is_symlink() and links < 40:
            links += 1
            link = os.readlink(root / nxt)
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            if link.startswith("/"):
                cur = ""
            continue
        cur = nxt
    return root / cur


def _executable(root: Path, rel: str) -> bool:
    """An executable file as the root sees it (a link to /dev/null masks)."""
    path = in_root(root, rel)
    return path.is_file() and os.access(path, os.X_OK)


def install_plugins(root: Path) -> list[str]:
    """*.install by name; /etc overrides /usr/lib; a link to /dev/null masks; the ones in
    data/hooks.toml [[skip]] are skipped, and, as kernel-install does, the ones that are
    not executable files."""
    found: dict[str, str] = {}
    for folder in reversed(INSTALL_D):
        d = root / folder
        if d.is_dir():
            for f in d.iterdir():
                if f.name.endswith(".install"):
                    found[f.name] = f"{folder}/{f.name}"
    return [
        rel
        for name, rel in sorted(found.items())
        if skip_reason(f"install.d/{name}") is None and _executable(root, rel)
    ]


def run_parts(root: Path, folder: str) -> list[str]:
    """run-parts' choice: names matching its pattern, executable, in order; minus the
    ones in data/hooks.toml [[skip]]."""
    d = root / folder
    if not d.is_dir():
        return []
    names = sorted(f.name for f in d.iterdir() if RUN_PARTS_NAME.match(f.name))
    short = os.path.basename(folder)
    return [
        f"{folder}/{n}" for n in names if skip_reason(f"{short}/{n}") is None and _executable(root, f"{folder}/{n}")
    ]


def debian_image(target: Target, release: str, layout: str) -> str:
    """$2 of Debian's hooks, as the root sees it: /boot/vmlinuz-KREL where the layout puts
    the kernel there (plain, grub), else the kernel kept at /lib/modules/KREL/vmlinuz (bls
    and uki keep theirs in the ESP, which no Debian hook expects: it would act on the
    ESP's copy)."""
    if layout in ("plain", "grub"):
        return "/" + target.fmt(spec("plain")["image"], release)
    return f"/{target.modules_dir(release)}/vmlinuz"


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


def debian_hooks(target: Target, action: str, release: str, layout: str, *, before: bool) -> list[Hook]:
    out: list[Hook] = []
    for phase in hooks_data()["debian"]:
        if phase["action"] != action or phase["before"] != before:
            continue
        args = (release, debian_image(target, release, layout)) if phase["image"] else (release,)
        env = (("DEB_MAINT_PARAMS", str(phase["params"])),)
        out += [Hook("/" + rel, args, False, env) for rel in run_parts(target.root, phase["folder"])]
    return out


def hooks(target: Target, action: str, release: str, image: str, initrd: str, layout: str) -> list[Hook]:
    """The hooks that run after a commit, in order: kernel-install's, then Debian's."""
    entry_dir = f"/{target.esp}/{target.token}/{release}"
    files = ("/" + image, *(("/" + initrd,) if initrd else ())) if action == "add" else ()
    out = [Hook("/" + rel, (action, release, entry_dir, *files), True) for rel in install_plugins(target.root)]
    return out + debian_hooks(target, action, release, layout, before=False)


def where_hooks_run(target: Target) -> str | None:
    """None when the root's hooks can run (here for /, else chrooted), else why not."""
    if target.is_host:
        return None
    if not in_root(target.root, "bin/sh").is_file():
        return f"{target.root} has no /bin/sh to run it in"
    if os.geteuid() != 0:
        return "running it chrooted into the root needs root privileges"
    return None


def _argv(target: Target, hook: Hook) -> list[str]:
    if target.is_host:
        return [hook.path, *hook.args]
    script = ["/bin/sh", "-c", CHROOT_SCRIPT, "sh", str(target.root)]
    userns = [require("unshare"), "--mount", "--pid", "--fork", "--propagation", "private"]
    return [*userns, *script, hook.path, *hook.args]


def _env(target: Target, common: dict[str, str], hook: Hook) -> dict[str, str]:
    base = dict(os.environ) if target.is_host else {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root"}
    return {**base, **common, **dict(hook.env)}


def _run(target: Target, chain: list[Hook], lead: str, common: dict[str, str]) -> list[str]:
    """Run CHAIN in order; the ones that ran. A failing hook raises ToolError, its
    message LEAD + " the hook ... failed"."""
    if not chain:
        return []
    why_not = where_hooks_run(target)
    if why_not is not None:
        for hook in chain:
            print(f"distkernel: warning: the hook {hook.path} was not run: {why_not}", file=sys.stderr)
        return []
    log = target.path(LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    stopped = False
    for hook in chain:
        if hook.chain and stopped:
            continue
        try:
            done = call(_argv(target, hook), ok=None, env=_env(target, common, hook))
        except OSError as e:  # e.g. a script without a #! line, on /
            raise ToolError(f"{lead} the hook {hook.path} cannot run ({e.strerror}); fix or remove it") from None
        with open(log, "a") as f:
            f.write(f"$ {hook.path} {' '.join(hook.args)}\n{done.output}[exit {done.code}]\n")
        if done.code in (126, 127) and not target.is_host and "chroot: failed to run" in done.output:
            failed = [line for line in done.output.splitlines() if "chroot: failed to run" in line]
            why = failed[-1].partition(": failed to run command ")[2]
            raise ToolError(f"{lead} the hook {hook.path} cannot run ({why}); fix or remove it", log=log)
        ran.append(hook.path)
        if hook.chain and done.code == STOP_CHAIN:
            stopped = True
            continue
        if done.code != 0:
            raise ToolError(
                f"{lead} the hook {hook.path} failed (exit {done.code})",
                log=log,
                details=tail(done.output.splitlines()),
            )
    return ran


def run_hooks(
    target: Target, action: str, release: str, image: str, initrd: str, layout: str, generator: str
) -> list[str]:
    """The hooks that follow a commit (add: the kernel is installed; remove: it is gone)."""
    lead = f"kernel {release} is {'installed' if action == 'add' else 'removed'}, but"
    chain = hooks(target, action, release, image, initrd, layout)
    if not chain:
        return []
    (target.root / STATE_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.root / STATE_DIR) as staging:
        common = kernel_install_env(target, layout, generator)
        common["KERNEL_INSTALL_STAGING_AREA"] = "/" + str(Path(staging).relative_to(target.root))
        return _run(target, chain, lead, common)


def run_hooks_before(target: Target, action: str, release: str, layout: str) -> list[str]:
    """Debian's preinst.d (add) or prerm.d (remove) hooks, before the change is committed:
    a failing one cancels it."""
    lead = f"kernel {release} was not {'installed' if action == 'add' else 'removed'}:"
    return _run(target, debian_hooks(target, action, release, layout, before=True), lead, {})
