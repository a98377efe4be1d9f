"""`distkernel test --shell`: boot a package (or a root's installed kernel) with a shell on
this terminal instead of the test init, with a folder of the host reachable read-only
at /host over 9p, the way virtme-ng's `vng -r` gives a kernel the host's files. The
kernel must have 9p over virtio (the qemu-guest feature profile brings it): that is
checked before anything boots."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.config.values import parse_config
from distkernel.core.errors import UserError
from distkernel.core.tools import interactive
from distkernel.workflows.boottest import accel as accels
from distkernel.workflows.boottest.installed import check_installed, installed_kernel, prepare_installed
from distkernel.workflows.boottest.preflight import check_kernel, check_modules, installed_modules, judge_package
from distkernel.workflows.boottest.prepare import Prepared, prepare
from distkernel.workflows.boottest.profile import QemuProfile
from distkernel.workflows.boottest.run import qemu_profile, scratch_dir

# What 9p over virtio needs, and the modules to load when they are not built in.
NEEDS = {"CONFIG_VIRTIO_PCI": "9pnet_virtio", "CONFIG_NET_9P": "9pnet", "CONFIG_NET_9P_VIRTIO": "9pnet_virtio"}
NEEDS_FS = ("CONFIG_9P_FS", "9p")
MOUNT = "/host"

SCRIPT = """#!/bin/busybox sh
# distkernel test --shell: the host's files at {mount}, a shell, then power-off.
bb=/bin/busybox
$bb mount -t proc proc /proc 2>/dev/null
$bb mount -t sysfs sysfs /sys 2>/dev/null
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
$bb --install -s /bin
export PATH=/bin:/sbin HOME=/root TERM={term} PS1={ps1}
for m in {modules}; do modprobe "$m" || echo "distkernel: modprobe $m failed"; done
mkdir -p {mount} /root
mount -t 9p -o trans=virtio,version=9p2000.L,ro host {mount} || echo "distkernel: mounting the host's files failed"
stty rows {rows} cols {cols} 2>/dev/null
cd {start} 2>/dev/null || cd {mount}
echo "distkernel shell: kernel $(uname -r)"
echo {shared}
echo 'distkernel shell: exit (or Ctrl-D) powers off; Ctrl-A X quits qemu'

setsid cttyhack sh
poweroff -f
sleep 3
reboot -f
"""


@dataclass(frozen=True)
class ShellOptions:
    share: Path  # the host folder shown at /host
    start: Path  # where the shell starts (a folder under SHARE), host path
    accel: str = "auto"
    append: str = ""


def nine_p_modules(what: str, config: dict[str, str]) -> tuple[str, ...]:
    """The modules to load for 9p, or UserError when the kernel cannot have it."""
    needs = [*NEEDS.items(), NEEDS_FS]
    if missing := [option for option, _ in needs if config.get(option) not in ("y", "m")]:
        raise UserError(
            f"{what}: the kernel has no {', '.join(missing)}, so --shell cannot give it the host's "
            'files; add the qemu-guest feature (features = ["qemu-guest"] in the recipe) and rebuild'
        )
    return tuple(dict.fromkeys(m for option, m in needs if config[option] == "m"))


def script(release: str, modules: tuple[str, ...], opts: ShellOptions) -> str:
    size = shutil.get_terminal_size()
    inside = Path(MOUNT) / opts.start.relative_to(opts.share) if opts.start.is_relative_to(opts.share) else Path(MOUNT)
    return SCRIPT.format(
        mount=MOUNT,
        term=shlex.quote(_term()),
        ps1=shlex.quote(f"[distkernel {release}] \\w# "),
        modules=" ".join(modules),
        rows=size.lines,
        cols=size.columns,
        start=shlex.quote(str(inside)),
        shared=shlex.quote(f"distkernel shell: the host's {opts.share} is read-only at {MOUNT}"),
    )


def _term() -> str:
    term = os.environ.get("TERM", "")
    return term if term.replace("-", "").isalnum() else "vt100"


def check_share(opts: ShellOptions) -> ShellOptions:
    share = opts.share.resolve()
    if not share.is_dir():
        raise UserError(f"--share {opts.share}: not a folder; name a folder of this machine to show at {MOUNT}")
    return ShellOptions(share, opts.start.resolve(), opts.accel, opts.append)


def shell_package(package: Path, opts: ShellOptions, say: Callable[[str], None] = print) -> int:
    """Boot PACKAGE with a shell on this terminal; qemu's exit status."""
    opts = check_share(opts)
    meta, config = judge_package(package)
    check_kernel(str(package), config, "bios")
    modules = nine_p_modules(str(package), config)
    check_modules(str(package), modules, meta.modules, option="--shell")
    prof = qemu_profile(meta.arch, "bios")

    def make(work: Path, init: str) -> Prepared:
        cmdline = prof.kernel_cmdline(f"quiet {opts.append}".strip())
        return prepare(
            package, meta, prof, firmware="bios", layout="plain", cmdline=cmdline, init=init, modules=modules, work=work
        )

    return _run(prof, meta.kernel_release, modules, opts, make, say)


def shell_installed(root: Path, release: str | None, opts: ShellOptions, say: Callable[[str], None] = print) -> int:
    """Boot the kernel installed in ROOT (its own initramfs first) with a shell."""
    opts = check_share(opts)
    k = installed_kernel(root, release)
    check_installed(root, k, "bios")
    config = parse_config((root / k.headers_dir / ".config").read_text(errors="replace"))
    modules = nine_p_modules(f"kernel {k.release} in {root}", config)
    check_modules(f"kernel {k.release} in {root}", modules, installed_modules(root / k.modules_dir), option="--shell")
    prof = qemu_profile(k.arch, "bios")

    def make(work: Path, init: str) -> Prepared:
        cmdline = prof.kernel_cmdline(f"quiet {opts.append}".strip())
        return prepare_installed(root, k, prof, firmware="bios", cmdline=cmdline, init=init, modules=modules, work=work)

    return _run(prof, k.release, modules, opts, make, say)


def _run(
    prof: QemuProfile,
    release: str,
    modules: tuple[str, ...],
    opts: ShellOptions,
    make: Callable[[Path, str], Prepared],
    say: Callable[[str], None],
) -> int:
    chosen = accels.choose(prof, opts.accel)
    say(f"preparing {release} with a shell init ({chosen.name}) ...")
    with tempfile.TemporaryDirectory(prefix="distkernel-shell-", dir=scratch_dir()) as tmp:
        ready = make(Path(tmp), script(release, modules, opts))
        assert ready.kernel is not None and ready.initrd is not None
        say(f"booting {release} ({ready.boot}, prepared in {ready.seconds:.1f} s)")
        return interactive(prof.shell_argv(chosen.name, ready.kernel, ready.initrd, ready.cmdline, opts.share))
