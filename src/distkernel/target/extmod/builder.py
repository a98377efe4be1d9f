"""Build registered modules against one kernel's headers tree, many at once.

A build is `make -C HEADERS M=COPY modules` (or the dkms.conf's MAKE) on a fresh copy of
the source, with the kernel's ARCH/CROSS_COMPILE/LLVM. All makes share one jobserver of
`cores` tokens, so builds side by side never oversubscribe the machine. Plain Kbuild
modules for the same kernel are built by one make: Kbuild's fixed cost per make (some
thirty compiler probes, modpost) is then paid once, not per module, and its objects
spread over all the tokens. A group that fails is built again module by module, so a
broken module costs only itself (and is built alone from then on). A failed build
yields a failed outcome with its log; it never raises."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from distkernel.core.errors import DistkernelError
from distkernel.core.paths import EXTMOD_WORK
from distkernel.core.tools import run, tail
from distkernel.target.extmod import dkms, registry, signing
from distkernel.target.extmod.jobserver import JobServer, default_cores
from distkernel.target.extmod.kernel import Kernel
from distkernel.target.extmod.placement import Claims, uninstall
from distkernel.target.extmod.registry import KernelStatus, Registered

WORK = EXTMOD_WORK  # build copies, under the root; removed after each build
DEFAULT_DEST = "updates"
_JOBS_FLAGS = ("-j", "--jobs")
_MAKE_ENV_DROP = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
Built = list[tuple[Path, str]]  # (built .ko, its place relative to lib/modules/RELEASE)


@dataclass(frozen=True)
class ModuleOutcome:
    name: str
    version: str
    ok: bool
    required: bool
    in_initramfs: tuple[str, ...]  # module names (without .ko) the initramfs must carry
    log: Path | None = None
    reason: str = ""
    release: str = ""
    status: str = ""  # built | failed | skipped
    signed: str = ""  # signed | unsigned | "" when the kernel does not sign modules
    files: tuple[str, ...] = ()  # installed, relative to lib/modules/RELEASE
    seconds: float = 0.0


@dataclass(frozen=True)
class Job:
    module: Registered
    kernel: Kernel
    explicit: bool = False  # asked for by name (add/rebuild): dkms AUTOINSTALL does not apply


@dataclass(frozen=True)
class Group:
    """Modules built by one make: each copy is a subfolder of M."""

    dirs: dict[str, Path]  # module name -> its copy
    output: str  # the make's log


def build_all(root: Path, jobs: Sequence[Job], *, cores: int | None = None) -> list[ModuleOutcome]:
    """Build, sign and install every job; outcomes in the order of JOBS."""
    if not jobs:
        return []
    server, claims = JobServer(cores or default_cores()), Claims(root)
    units = plan(root, jobs)
    try:
        with ThreadPoolExecutor(max_workers=min(len(units), server.slots)) as pool:
            done = pool.map(lambda unit: _run_unit(root, [jobs[i] for i in unit], server, claims), units)
            by_index = {
                i: o for unit, outcomes in zip(units, done, strict=True) for i, o in zip(unit, outcomes, strict=True)
            }
    finally:
        server.close()
    return [by_index[i] for i in range(len(jobs))]


def plan(root: Path, jobs: Sequence[Job]) -> list[list[int]]:
    """Units of work (indexes into JOBS): the plain Kbuild modules of each kernel in one
    group, Kbuild spreading their objects over the jobserver's tokens; alone: dkms
    modules (their own MAKE and layout) and modules whose last build failed somewhere
    (a known-broken module must not make its group build twice)."""
    units: list[list[int]] = []
    per_kernel: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        failed = any(s.status == "failed" for s in registry.statuses(root, job.module.name))
        if job.module.kind == "kbuild" and not failed:
            per_kernel.setdefault(job.kernel.release, []).append(i)
        else:
            units.append([i])
    return [*per_kernel.values(), *units]


def _run_unit(root: Path, jobs: list[Job], server: JobServer, claims: Claims) -> list[ModuleOutcome]:
    if len(jobs) == 1:
        return [_guarded(root, jobs[0], server, claims, None)]
    work = root / WORK / f"group-{jobs[0].kernel.release}-{jobs[0].module.name}"
    try:
        group = _make_group(root, jobs, server, work)
        return [_guarded(root, job, server, claims, group) for job in jobs]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make_group(root: Path, jobs: list[Job], server: JobServer, work: Path) -> Group | None:
    """One make for all JOBS (same kernel, plain Kbuild); None when it fails, and the
    modules are then built one by one."""
    kernel = jobs[0].kernel
    try:
        shutil.rmtree(work, ignore_errors=True)
        dirs = {job.module.name: work / f"m{n}" for n, job in enumerate(jobs)}  # names safe for make
        for job in jobs:
            shutil.copytree(job.module.source_dir(root), dirs[job.module.name], symlinks=True)
        (work / "Kbuild").write_text("".join(f"obj-m += {d.name}/\n" for d in dirs.values()))
        argv = ["make", "-C", str(kernel.headers), f"M={work}", *kernel.make_vars(), "modules"]
        code, output = _make(argv, work, server)
    except OSError:
        return None
    return Group(dirs, output) if code == 0 else None


def _make(argv: list[str], cwd: Path, server: JobServer) -> tuple[int, str]:
    """Run make as a client of our jobserver; its exit code and output."""
    env = {k: v for k, v in os.environ.items() if k not in _MAKE_ENV_DROP}
    env.update(MAKEFLAGS=server.makeflags(), LC_ALL="C")
    with server.slot():
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            pass_fds=(server.read_fd, server.write_fd),
            check=False,
        )
    return proc.returncode, "$ " + shlex.join(argv) + "\n" + proc.stdout


def _guarded(root: Path, job: Job, server: JobServer, claims: Claims, group: Group | None) -> ModuleOutcome:
    """One job; whatever goes wrong becomes a failed outcome, never the kernel's problem."""
    log = registry.log_path(root, job.module.name, job.kernel.release)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {job.module.name} {job.module.version} for {job.kernel.release}\n")
    start = time.monotonic()
    previous = registry.load_status(root, job.module.name, job.kernel.release)
    kept = previous.files if previous else ()
    try:
        status = _build(root, job, server, claims, log, kept, group)
    except Exception as e:  # a module must never break the kernel's install
        with open(log, "a") as f:
            f.write(traceback.format_exc())
        reason = e.message if isinstance(e, DistkernelError) else f"{type(e).__name__}: {e}"
        status = KernelStatus(job.kernel.release, job.module.version, "failed", reason, files=kept)
    finally:
        shutil.rmtree(root / WORK / f"{job.module.name}-{job.kernel.release}", ignore_errors=True)
    status = dataclasses.replace(status, log=str(log), seconds=round(time.monotonic() - start, 2))
    registry.save_status(root, job.module.name, status)
    return ModuleOutcome(
        name=job.module.name,
        version=job.module.version,
        ok=status.status != "failed",
        required=job.module.required,
        in_initramfs=status.modules if job.module.initramfs and status.status == "built" else (),
        log=log,
        reason=status.reason,
        release=job.kernel.release,
        status=status.status,
        signed=status.signed,
        files=status.files,
        seconds=status.seconds,
    )


def _build(
    root: Path, job: Job, server: JobServer, claims: Claims, log: Path, kept: tuple[str, ...], group: Group | None
) -> KernelStatus:
    module, kernel = job.module, job.kernel
    conf = module.dkms_conf(root)

    def result(
        state: str, reason: str = "", files: tuple[str, ...] = kept, modules: tuple[str, ...] = (), signed: str = ""
    ) -> KernelStatus:
        return KernelStatus(kernel.release, module.version, state, reason, files=files, modules=modules, signed=signed)

    if conf and not job.explicit and not conf.autoinstall:
        return result("skipped", "dkms.conf AUTOINSTALL is not yes; build it with `distkernel modules rebuild`")
    if conf and (why := dkms.exclusion(conf, kernel.release, kernel.machine, kernel.config)):
        uninstall(kernel.modules_dir, kept)
        return result("skipped", why, files=())
    if not (kernel.headers / "Makefile").is_file():
        return result("failed", f"no headers tree at {kernel.headers} (it has no Makefile)")
    built: Built | str | None = _from_group(group, module.name, conf, kernel, log) if group else None
    if built is None:  # not grouped, or its group's make did not give it its modules
        built = _alone(root, job, conf, server, log)
    if isinstance(built, str):
        return result("failed", built + (" (previous build kept)" if kept else ""))
    signed = _strip_and_sign(root, kernel, [src for src, _ in built], log)
    if clash := claims.install(module.name, kernel.release, kernel.modules_dir, built, kept):
        return result("failed", clash)
    names = tuple(Path(rel).name.removesuffix(".ko") for _, rel in built)
    return result("built", files=tuple(rel for _, rel in built), modules=names, signed=signed)


def _from_group(group: Group, name: str, conf: dkms.DkmsConf | None, kernel: Kernel, log: Path) -> Built | None:
    built = built_modules(conf, kernel, group.dirs[name])
    if not built or not all(src.is_file() for src, _ in built):
        return None
    with open(log, "a") as f:
        f.write(f"# built in one make with: {', '.join(group.dirs)}\n{group.output}")
    return built


def _alone(root: Path, job: Job, conf: dkms.DkmsConf | None, server: JobServer, log: Path) -> Built | str:
    """Build JOB by itself: its modules, or why it failed."""
    module, kernel = job.module, job.kernel
    work = root / WORK / f"{module.name}-{kernel.release}"
    shutil.rmtree(work, ignore_errors=True)
    copy = work / "dkms" / module.name / module.version / "build" if conf else work / "build"
    shutil.copytree(module.source_dir(root), copy, symlinks=True)
    try:
        argv = make_argv(conf, kernel, copy, work / "dkms", server.slots)
    except ValueError as e:
        return str(e)
    code, output = _make(argv, copy, server)
    with open(log, "a") as f:
        f.write(output)
    if code != 0:
        first = next((line for line in tail(output.splitlines(), 50) if "error" in line.lower()), f"exit {code}")
        return first.strip().replace(f"{copy}/", "")  # the build copy's path says nothing
    built = built_modules(conf, kernel, copy)
    missing = [str(src.relative_to(copy)) for src, _ in built if not src.is_file()]
    if missing or not built:
        return f"make succeeded but did not build {', '.join(missing) or 'any .ko'}"
    return built


def make_argv(conf: dkms.DkmsConf | None, kernel: Kernel, copy: Path, dkms_tree: Path, cores: int) -> list[str]:
    """The make command line; ValueError when a dkms.conf MAKE cannot be run without a shell."""
    default = ["make", "-C", str(kernel.headers), f"M={copy}", "modules"]
    command = dkms.make_command(conf, kernel.release) if conf else None
    if command is None:
        return [*default[:-1], *kernel.make_vars(), default[-1]]
    variables = {
        "kernelver": kernel.release,
        "kernel_source_dir": str(kernel.headers),
        "dkms_tree": str(dkms_tree),
        "PWD": str(copy),  # dkms runs MAKE in the build copy
        "arch": kernel.machine,
        "parallel_jobs": str(cores),
        "module": conf.package_name if conf else "",
        "module_version": conf.package_version if conf else "",
        "PACKAGE_NAME": conf.package_name if conf else "",
        "PACKAGE_VERSION": conf.package_version if conf else "",
    }
    if unknown := dkms.unknown_variables(command, variables):
        raise ValueError(f"dkms.conf MAKE uses ${unknown[0]}, which distkernel does not define")
    words = shlex.split(dkms.expand(command, variables))
    if any(w in ("&&", "||", ";", "|", ">", "<", "&") for w in words):
        raise ValueError("dkms.conf MAKE uses shell syntax; distkernel runs it without a shell: use one make command")
    if not words or os.path.basename(words[0]) != "make":
        raise ValueError(f"dkms.conf MAKE runs {words[0] if words else 'nothing'!r}; only make commands are run")
    # The jobserver decides parallelism: drop -jN so one module cannot oversubscribe.
    kept: list[str] = []
    after_bare_j = False
    for w in words[1:]:
        if not (w.startswith(_JOBS_FLAGS) or (after_bare_j and w.isdigit())):
            kept.append(w)
        after_bare_j = w in _JOBS_FLAGS
    return [words[0], *kept, *kernel.make_vars()]


def built_modules(conf: dkms.DkmsConf | None, kernel: Kernel, copy: Path) -> Built:
    """Each module the build in COPY should have made, and where it goes."""
    if conf is None:
        found = sorted(copy.rglob("*.ko"))
        return [(ko, f"{DEFAULT_DEST}/{ko.name}") for ko in found]
    variables = {"kernelver": kernel.release, "arch": kernel.machine}
    out = []
    for m in conf.modules:
        location = dkms.expand(m.location, variables)
        dest = dkms.expand(m.dest, variables) or DEFAULT_DEST
        out.append((copy / location / f"{m.name}.ko", f"{dest}/{m.dest_name}.ko"))
    return out


def _strip_and_sign(root: Path, kernel: Kernel, modules: list[Path], log: Path) -> str:
    """Strip debug info (like INSTALL_MOD_STRIP=1), then sign: the signature must be last."""
    for ko in modules:
        run([kernel.tool("strip"), "--strip-debug", ko], log=log, what=f"strip {ko.name}")
    if not signing.signs_modules(kernel.config):
        return ""
    key = signing.root_module_key(root)
    if key is None:
        with open(log, "a") as f:
            f.write(f"# not signed: no module key at {root / signing.KEY_DIR} (the kernel has CONFIG_MODULE_SIG=y)\n")
        return signing.UNSIGNED
    tool = signing.sign_file(kernel.headers, root / WORK, log)
    for ko in modules:
        signing.sign_module(tool, kernel.config, key, ko, log)
    return signing.SIGNED
