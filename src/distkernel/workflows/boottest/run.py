"""A boot test of a package, or of a kernel installed in a root: check what can be known
before booting, prepare once, then boot until the marker or a failure that is not
worth retrying; every attempt is reported. Console logs go to a folder of their own,
kept when the test fails (or when asked), removed when it passes."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distkernel.build.package.format import Metadata
from distkernel.core import cache
from distkernel.core.errors import ToolError, UserError
from distkernel.core.progress import Progress
from distkernel.core.tools import require
from distkernel.workflows.boottest import accel as accels
from distkernel.workflows.boottest.console import FLAKY, classify
from distkernel.workflows.boottest.installed import check_installed, installed_kernel, prepare_installed
from distkernel.workflows.boottest.preflight import check_kernel, check_modules, installed_modules
from distkernel.workflows.boottest.prepare import Prepared, prepare
from distkernel.workflows.boottest.prepcache import cached_prepare, judged, prepared_key
from distkernel.workflows.boottest.profile import QemuProfile, profile
from distkernel.workflows.boottest.qemu import run_qemu
from distkernel.workflows.boottest.result import Attempt, BootResult
from distkernel.workflows.boottest.testinit import MODULE_NAME, init_script
from distkernel.workflows.boottest.uefi import need_file

FIRMWARES = ("bios", "uefi")
# What each firmware can start: BIOS boots the kernel directly, UEFI through the
# boot loader that reads the layout. The first is the default.
FIRMWARE_LAYOUTS = {"bios": ("plain",), "uefi": ("bls", "uki", "grub")}
# The scratch root (a whole install: thousands of header files) lives in memory when it
# can: on a disk mounted with `discard`, deleting it took longer than the boot.
SCRATCH = Path("/dev/shm")


@dataclass(frozen=True)
class BootOptions:
    firmware: str = "bios"
    layout: str | None = None  # None: the firmware's first layout
    timeout: float = 120.0  # seconds per attempt
    retries: int = 0  # extra attempts after a panic or a timeout
    accel: str = "auto"  # auto | kvm | tcg
    append: str = ""  # extra kernel arguments
    modules: tuple[str, ...] | None = None  # None: the package's [test] modules
    init: str | None = None  # replaces the test init (to test the harness itself)
    log_dir: Path | None = None  # default: <cache>/boottest/logs
    keep_logs: bool = False


def check_options(opts: BootOptions) -> str:
    """The layout to test; UserError for a combination that cannot boot."""
    if opts.firmware not in FIRMWARES:
        raise UserError(f"--firmware {opts.firmware}: unknown; use one of: {', '.join(FIRMWARES)}")
    layout = opts.layout or FIRMWARE_LAYOUTS[opts.firmware][0]
    if layout not in FIRMWARE_LAYOUTS[opts.firmware]:
        other = next((f for f, ls in FIRMWARE_LAYOUTS.items() if layout in ls), None)
        fix = f"use --firmware {other}" if other else f"use one of: {', '.join(FIRMWARE_LAYOUTS[opts.firmware])}"
        raise UserError(f"--layout {layout}: not bootable with --firmware {opts.firmware}; {fix}")
    if opts.timeout <= 0:
        raise UserError(f"--timeout {opts.timeout}: must be more than 0 seconds")
    if opts.retries < 0:
        raise UserError(f"--retries {opts.retries}: must be 0 or more")
    if opts.accel not in accels.ACCELS:
        raise UserError(f"--accel {opts.accel}: unknown; use one of: {', '.join(accels.ACCELS)}")
    for m in opts.modules or ():
        if not MODULE_NAME.match(m):
            raise UserError(f"--module {m!r}: not a module name (letters, digits, _ and - only)")
    return layout


def package_test_modules(package: Path, meta: Metadata) -> tuple[str, ...]:
    """The modules the package's recipe names in [test] (its metadata's test.modules)."""
    test = meta.extra.get("test") or {}
    raw = test.get("modules", []) if isinstance(test, dict) else None
    if not isinstance(raw, list) or not all(isinstance(m, str) and MODULE_NAME.match(m) for m in raw):
        raise UserError(
            f"{package}: metadata test.modules {raw!r} is not a list of module names; "
            "fix the recipe's [test] modules and rebuild, or pass --module"
        )
    return tuple(raw)


def scratch_dir() -> Path | None:
    """Where the scratch root goes: in memory when it can (SCRATCH), else the default."""
    return SCRATCH if os.access(SCRATCH, os.W_OK) else None


def _attempt(
    prof: QemuProfile,
    ready: Prepared,
    accel: str,
    token: str,
    opts: BootOptions,
    logs: Path,
    n: int,
    work: Path,
    progress: Progress | None,
) -> tuple[Attempt, bool]:
    """One qemu run; the bool says KVM hung before the kernel's first line."""
    vars_copy = None
    if ready.disk is not None:
        assert prof.uefi is not None
        vars_copy = work / "vars.fd"
        shutil.copyfile(prof.uefi.vars, vars_copy)  # a fresh NVRAM per boot
    log = logs / f"attempt-{n}-{accel}.log"
    ran = run_qemu(
        ready.argv(prof, accel, vars_copy),
        token=token,
        timeout=opts.timeout,
        console_log=log,
        first_line_deadline=accels.KVM_FIRST_LINE_S if accel == "kvm" else None,
        progress=progress,
    )
    verdict = classify(ran.lines, token, timed_out=ran.timed_out, qemu_status=ran.status, qemu_err=ran.stderr)
    return Attempt(n, verdict.outcome, verdict.detail, accel, ran.seconds, ran.marker_s, log, ran.status), ran.kvm_hung


def qemu_profile(arch: str, firmware: str) -> QemuProfile:
    prof = profile(arch)
    if firmware == "uefi":
        if prof.uefi is None:
            raise UserError(f"--firmware uefi: no UEFI firmware known for {arch} in data/qemu.toml")
        need_file(prof.uefi.code, prof.uefi.firmware_package)
        need_file(prof.uefi.vars, prof.uefi.firmware_package)
    require(prof.binary)
    return prof


@dataclass(frozen=True)
class Case:
    """What is booted: a package file, or a root's installed kernel."""

    source: Path
    name: str
    release: str
    arch: str
    layout: str


def boot_test(
    package: Path,
    opts: BootOptions,
    *,
    on_attempt: Callable[[Attempt], None] | None = None,
    progress: Progress | None = None,
) -> BootResult:
    """Boot PACKAGE installed into a scratch root with the chosen layout."""
    layout = check_options(opts)
    meta, config = judged(package)  # the whole package judged before anything runs
    prof = qemu_profile(meta.arch, opts.firmware)
    check_kernel(str(package), config, opts.firmware)
    if opts.modules is not None:
        modules = opts.modules
        check_modules(str(package), modules, meta.modules, option="--module")
    else:
        modules = package_test_modules(package, meta)
        check_modules(str(package), modules, meta.modules, option="metadata test.modules")
    case = Case(package, meta.name, meta.kernel_release, meta.arch, layout)

    cmdline = prof.kernel_cmdline(opts.append)
    key = prepared_key(package, firmware=opts.firmware, layout=layout, cmdline=cmdline, modules=modules, init=opts.init)

    def make(work: Path, token: str) -> tuple[Prepared, str]:
        def fresh(token: str) -> Prepared:
            init = opts.init if opts.init is not None else init_script(meta.kernel_release, modules, token)
            return prepare(
                package,
                meta,
                prof,
                firmware=opts.firmware,
                layout=layout,
                cmdline=cmdline,
                init=init,
                modules=modules,
                work=work,
            )

        return cached_prepare(key, work, token, fresh)

    return _boot(case, prof, modules, opts, make, on_attempt, progress)


def boot_installed(
    root: Path,
    release: str | None,
    opts: BootOptions,
    *,
    on_attempt: Callable[[Attempt], None] | None = None,
    progress: Progress | None = None,
) -> BootResult:
    """Boot the kernel RELEASE (default: the default one) installed in ROOT, with the
    root's own initramfs and modules (external ones too); the test init comes after."""
    check_options(dataclasses.replace(opts, layout=None))
    k = installed_kernel(root, release)
    if opts.layout is not None and opts.layout != k.layout:
        raise UserError(
            f"--layout {opts.layout}: kernel {k.release} in {root} is installed with {k.layout}; drop --layout"
        )
    prof = qemu_profile(k.arch, opts.firmware)
    check_installed(root, k, opts.firmware)
    modules = opts.modules or ()
    case = Case(root, k.package, k.release, k.arch, k.layout)

    def make(work: Path, token: str) -> tuple[Prepared, str]:
        cmdline = prof.kernel_cmdline(opts.append)
        init = opts.init if opts.init is not None else init_script(k.release, modules, token)
        ready = prepare_installed(
            root, k, prof, firmware=opts.firmware, cmdline=cmdline, init=init, modules=modules, work=work
        )
        return ready, token

    check_modules(f"kernel {k.release} in {root}", modules, installed_modules(root / k.modules_dir), option="--module")
    return _boot(case, prof, modules, opts, make, on_attempt, progress)


def _boot(
    case: Case,
    prof: QemuProfile,
    modules: tuple[str, ...],
    opts: BootOptions,
    make: Callable[[Path, str], tuple[Prepared, str]],
    on_attempt: Callable[[Attempt], None] | None,
    progress: Progress | None,
) -> BootResult:
    chosen = accels.choose(prof, opts.accel)
    token = secrets.token_hex(8)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_name = f"{case.name}-{opts.firmware}-{case.layout}-{stamp}-{token[:6]}"
    logs = (opts.log_dir or cache.cache_dir("boottest", "logs")) / run_name
    logs.mkdir(parents=True, exist_ok=True)
    attempts: list[Attempt] = []
    try:
        with tempfile.TemporaryDirectory(prefix="distkernel-test-", dir=scratch_dir()) as tmp:
            work = Path(tmp)
            ready, token = make(work, token)  # a kept preparation brings its own token
            while len(attempts) <= opts.retries:
                n = len(attempts) + 1
                attempt, hung = _attempt(prof, ready, chosen.name, token, opts, logs, n, work, progress)
                if hung:
                    problem = f"no kernel output within {accels.KVM_FIRST_LINE_S:.0f} s under KVM"
                    accels.remember_kvm_hang(problem)
                    if opts.accel == "kvm":  # asked for: never a quiet TCG pass
                        raise ToolError(
                            f"--accel kvm: KVM hangs guests on this host ({problem}); use --accel auto or tcg",
                            log=attempt.console_log,
                        )
                    chosen = accels.Accel("tcg", f"KVM unusable: {problem}")  # the same attempt under TCG
                    continue
                attempts.append(attempt)
                if on_attempt:
                    on_attempt(attempt)
                if attempt.passed or attempt.outcome not in FLAKY:
                    break
    finally:
        passed = bool(attempts) and attempts[-1].passed
        if (passed and not opts.keep_logs) or not any(logs.iterdir()):
            shutil.rmtree(logs, ignore_errors=True)
    if passed and not opts.keep_logs:
        attempts = [dataclasses.replace(a, console_log=None) for a in attempts]
    return BootResult(
        package=case.source,
        name=case.name,
        release=case.release,
        arch=case.arch,
        firmware=opts.firmware,
        layout=case.layout,
        boot=ready.boot,
        accel=chosen.name,
        accel_reason=chosen.reason,
        modules=modules,
        attempts=tuple(attempts),
        prepare_s=ready.seconds,
        prepare_cached=ready.cached,
    )
