"""grub: plain's files plus a grub.cfg for the kernels distkernel manages, default first
(when the root has grub-mkconfig, an /etc/grub.d script of ours gives it the same
entries and default, and install runs it after the commit). A default that is not
known-good is on trial: grub.cfg boots it while GRUB's environment block counts tries
down, then the newest known-good kernel (see `trial_lines`)."""

from __future__ import annotations

import os

from distkernel.target.install.layouts import plain
from distkernel.target.install.layouts.base import (
    KernelFiles,
    Layout,
    Placement,
    Shared,
    boot_text,
    group_default,
    spec,
)
from distkernel.target.install.state import KernelRecord, State
from distkernel.target.install.target import Target
from distkernel.target.install.transaction import Transaction

HEADER = (
    "# Written by distkernel for the kernels it installed; rewritten on every install,",
    "# remove and rollback. Do not edit: use /etc/kernel/cmdline and `distkernel rollback`.",
    "set default=0",
)
ENV_HEADER = b"# GRUB Environment Block\n"
ENV_SIZE = 1024  # GRUB rewrites the block in place: exactly this size, padded with '#'


def trial(state: State) -> tuple[KernelRecord, KernelRecord] | None:
    """(the default on trial, the known-good kernel GRUB falls back to), or None."""
    if int(spec("grub").get("tries", 0)) <= 0:
        return None
    default, _ = group_default(state, ("grub",))
    if default is None or default.known_good:
        return None
    good = next((k for k in state.ordered() if k.layout == "grub" and k.bootable and k.known_good), None)
    return (default, good) if good is not None and good is not default else None


def _id(k: KernelRecord) -> str:
    return _quote("distkernel-" + k.release)


def trial_lines(on_trial: KernelRecord, good: KernelRecord) -> list[str]:
    """GRUB script has no arithmetic: one branch per count, each taking one try and saving
    the rest before the kernel starts; with none left the known-good kernel boots."""
    s = spec("grub")
    release, tries = s["env_release"], s["env_tries"]
    lines = [f"set default={_id(good)}", f"load_env {release} {tries}"]
    for n in range(int(s["tries"]), 0, -1):
        test = f'[ "${{{release}}}" = {_quote(on_trial.release)} -a "${{{tries}}}" = "{n}" ]'
        lines += [
            f"{'if' if n == int(s['tries']) else 'elif'} {test}; then",
            f"\tset {tries}={n - 1}",
            f"\tsave_env {tries}",
            f"\tset default={_id(on_trial)}",
        ]
    return [*lines, "fi"]


def grubenv(target: Target, state: State) -> bytes:
    """The environment block: the trial's release and its tries left (kept as GRUB left
    them while the same kernel is on trial); a trial that used up its tries stays as GRUB
    left it (`list` says BAD) while that kernel is installed and not marked good; else no
    variable of ours."""
    s = spec("grub")
    current = _read_env(target)
    keep = {k: v for k, v in current.items() if k not in (s["env_release"], s["env_tries"])}
    found = trial(state)
    if found is not None:
        release = found[0].release
        same = current.get(s["env_release"]) == release and s["env_tries"] in current
        keep[s["env_release"]] = release
        keep[s["env_tries"]] = current[s["env_tries"]] if same else str(s["tries"])
    elif _failed(current, state):
        keep[s["env_release"]] = current[s["env_release"]]
        keep[s["env_tries"]] = current[s["env_tries"]]
    body = ENV_HEADER + b"".join(f"{k}={v}\n".encode() for k, v in keep.items())
    if len(body) > ENV_SIZE:
        body = ENV_HEADER  # not ours to shorten: a block this full is left to grub-editenv
    return body.ljust(ENV_SIZE, b"#")


def _failed(env: dict[str, str], state: State) -> bool:
    """ENV names a kernel of STATE that used up its tries and is not known-good."""
    s = spec("grub")
    k = state.kernels.get(env.get(s["env_release"], ""))
    return k is not None and not k.known_good and env.get(s["env_tries"]) == "0"


def trial_tries(target: Target, release: str) -> tuple[int, int] | None:
    """(tries left, tries done) of RELEASE on trial as GRUB's environment block says; None:
    not on trial there."""
    s = spec("grub")
    env = _read_env(target)
    if env.get(s["env_release"]) != release or not env.get(s["env_tries"], "").isdigit():
        return None
    left = int(env[s["env_tries"]])
    return left, max(0, int(s["tries"]) - left)


def _read_env(target: Target) -> dict[str, str]:
    try:
        text = target.path(target.fmt(spec("grub")["env"], "")).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def place(tx: Transaction, target: Target, files: KernelFiles) -> Placement:
    """plain's files; the entry naming the kernel is the grub.cfg all grub kernels share."""
    p = plain.place(tx, target, files)
    p.entry = target.fmt(spec("grub")["config"], files.release)
    return p


def writes(target: Target, release: str) -> list[str]:
    ours = spec("grub")["mkconfig_script"] if has_mkconfig(target) else target.fmt(spec("grub")["config"], release)
    return [*plain.writes(target, release), ours]


def has_mkconfig(target: Target) -> str | None:
    return next((p for p in spec("grub")["mkconfig"] if (target.root / p).exists()), None)


def grub_path(target: Target, rel: str) -> str:
    """A root-relative path as GRUB sees it: from /boot's own filesystem when it is one."""
    if os.path.ismount(target.path(target.boot)):
        return "/" + os.path.relpath(rel, target.boot)
    return "/" + rel


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def menuentry(target: Target, k: KernelRecord) -> list[str]:
    image = grub_path(target, k.image)
    lines = [
        f"menuentry {_quote(f'{target.pretty_name()}, Linux {k.release}')} --id {_id(k)} {{",
        f"\tsearch --no-floppy --file --set=root {image}",
        f"\tlinux {image} {k.cmdline}".rstrip(),
    ]
    if k.initrd:
        lines.append(f"\tinitrd {grub_path(target, k.initrd)}")
    lines.append("}")
    return lines


def config_path(target: Target) -> str:
    return target.fmt(spec("grub")["config"], "")


def _entries(target: Target, state: State) -> list[str]:
    default, _ = group_default(state, ("grub",))
    kernels = [k for k in state.ordered() if k.layout == "grub"]
    kernels.sort(key=lambda k: k is not default)  # stable: default first, then newest first
    return [line for k in kernels for line in menuentry(target, k)]


def render(target: Target, state: State, *, timeout: int | None = None) -> bytes:
    """Our grub.cfg for STATE; TIMEOUT (seconds of menu) overrides the layout's."""
    s = spec("grub")
    wait = s["timeout"] if timeout is None else timeout
    lines = [*HEADER, f"set timeout={wait}", *(f"insmod {m}" for m in s["insmod"])]
    found = trial(state)
    if found is not None:
        lines += trial_lines(*found)
    return boot_text(target.fmt(s["config"], ""), lines + _entries(target, state))


def mkconfig_script(target: Target, state: State) -> bytes:
    """The /etc/grub.d script that puts into grub-mkconfig's grub.cfg what ours has: our
    entries, and our default by its id (a trial's count as in our grub.cfg); grub-reboot's
    one-time entry (00_header's boot_once) is left to boot, taking no try."""
    default, _ = group_default(state, ("grub",))
    found = trial(state)
    choose = trial_lines(*found) if found else [f"set default={_id(default)}"] if default else []
    body = [
        "### distkernel: its kernels and the default (its trial); written on every install, remove and rollback",
        *(f"insmod {m}" for m in spec("grub")["insmod"]),
        *(['if [ "${boot_once}" != true ]; then', *(f"\t{line}" for line in choose), "fi"] if choose else []),
        *_entries(target, state),
    ]
    end = "DISTKERNEL_EOF"  # no line of the body is this: each starts with a keyword or a tab
    head = ["#!/bin/sh", "# Written by distkernel for grub-mkconfig from its state; do not edit.", f"cat <<'{end}'"]
    return boot_text(spec("grub")["mkconfig_script"], [*head, *body, end])


def shared(target: Target, state: State) -> dict[str, Shared]:
    """grub.cfg (ours; else our script for the root's grub-mkconfig), and GRUB's
    environment block: the user's too (grub-editenv, GRUB's save_env write it), so only
    our two variables in it follow the state."""
    if not any(k.layout == "grub" for k in state.kernels.values()):
        return {}
    s = spec("grub")
    if has_mkconfig(target):
        out = {s["mkconfig_script"]: Shared(data=mkconfig_script(target, state), mode=0o755)}
        cfg = target.path(config_path(target))
        if cfg.is_file() and not cfg.is_symlink():  # grub-mkconfig's to replace; ours until then
            out[config_path(target)] = Shared(data=cfg.read_bytes(), owned=False)
    else:
        out = {target.fmt(s["config"], ""): Shared(data=render(target, state))}
    env = target.fmt(s["env"], "")
    if trial(state) is not None or _read_env(target):
        out[env] = Shared(data=grubenv(target, state), owned=False)
    return out


LAYOUT = Layout("grub", place, writes, shared)
