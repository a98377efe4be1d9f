"""Build registered modules against kernels' headers trees, many at once.

Each dkms module's dkms.conf is first evaluated for each kernel (dkms.py): a module
whose BUILD_EXCLUSIVE_* rules a kernel out is *excluded* (with the rule), one whose
AUTOINSTALL is not yes is *skipped* by install, and BUILD_DEPENDS orders the builds
(a module is built after the modules it names, and fails if they did not build). The
rest are built as dkms builds them (steps.py) with the kernel's ARCH/CROSS_COMPILE/LLVM.

All makes share one jobserver of `cores` tokens, so builds side by side never
oversubscribe the machine. Modules whose build is plain Kbuild (no dkms.conf, or a
dkms.conf with dkms's default MAKE and no scripts or patches) and whose Makefiles do not
depend on the folder they are built from are built for one kernel by one make: Kbuild's
fixed cost per make (some thirty compiler probes, modpost) is then paid once. A group
that fails is built again module by module, so a broken module costs only itself (and
is built alone from then on). A failed build yields a failed outcome with its log and
its first real error; it never raises. A damaged build status stops the run before any
build (registry.load_status)."""

from __future__ import annotations

import dataclasses
import shutil
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from distkernel.core.errors import DistkernelError
from distkernel.core.paths import EXTMOD_WORK
from distkernel.core.progress import elapsed
from distkernel.core.tools import run
from distkernel.target.extmod import dkms, hosttools, registry, signing, steps
from distkernel.target.extmod.jobserver import JobServer, default_cores
from distkernel.target.extmod.kernel import Kernel
from distkernel.target.extmod.placement import Claims, uninstall
from distkernel.target.extmod.registry import KernelStatus, Registered
from distkernel.target.extmod.steps import Product

WORK = EXTMOD_WORK  # build copies, under the root; removed after each run


@dataclass(frozen=True)
class ModuleOutcome:
    name: str
    version: str
    ok: bool  # not failed (built, excluded or skipped)
    required: bool
    in_initramfs: tuple[str, ...]  # module names (without .ko) the initramfs must carry
    log: Path | None = None
    reason: str = ""
    release: str = ""
    status: str = ""  # built | failed | skipped (AUTOINSTALL) | excluded (BUILD_EXCLUSIVE_*)
    signed: str = ""  # signed | unsigned | "" when the kernel does not sign modules
    files: tuple[str, ...] = ()  # installed, relative to lib/modules/RELEASE
    seconds: float = 0.0


@dataclass(frozen=True)
class Job:
    module: Registered
    kernel: Kernel
    explicit: bool = False  # asked for by name (add/rebuild): dkms AUTOINSTALL does not apply


@dataclass
class _Task:
    """A job during the run: its dkms.conf for the kernel, and its status once decided."""

    job: Job
    log: Path
    kept: tuple[str, ...]  # files of the previous build for this kernel
    conf: dkms.DkmsConf | None = None
    ctx: dkms.Context | None = None
    status: KernelStatus | None = None
    start: float = field(default_factory=time.monotonic)
    saved: bool = False

    def decide(
        self,
        state: str,
        reason: str = "",
        *,
        files: tuple[str, ...] | None = None,
        modules: tuple[str, ...] = (),
        signed: str = "",
    ) -> None:
        files = self.kept if files is None else files
        release, version = self.job.kernel.release, self.job.module.version
        self.status = KernelStatus(release, version, state, reason, files=files, modules=modules, signed=signed)

    def seal(self, root: Path) -> None:
        """Save the decided status (with its log and time), once."""
        if self.status is None or self.saved:
            return
        took = round(time.monotonic() - self.start, 2)
        self.status = dataclasses.replace(self.status, log=str(self.log), seconds=took)
        registry.save_status(root, self.job.module.name, self.status)
        self.saved = True


def build_all(root: Path, jobs: Sequence[Job], *, cores: int | None = None) -> list[ModuleOutcome]:
    """Build, sign and install every job; outcomes in the order of JOBS."""
    if not jobs:
        return []
    for module in registry.registered(root):  # a damaged status stops here, before any build
        registry.statuses(root, module.name)  # (plan and Claims read every module's)
    tasks = [_task(root, job) for job in jobs]
    server, claims, work = JobServer(cores or default_cores()), Claims(root), root / WORK
    names = ", ".join(sorted({job.module.name for job in jobs}))
    try:
        with ThreadPoolExecutor(max_workers=server.slots) as pool, elapsed(f"external modules ({names})"):
            list(pool.map(lambda t: _prepare(root, t, work, server.slots), tasks))
            waves = _waves(tasks)
            for t in tasks:
                t.seal(root)
            for wave in waves:
                units = [[wave[i] for i in u] for u in plan(root, [t.job for t in wave], [t.conf for t in wave])]
                list(pool.map(lambda u: _run_unit(root, u, tasks, server, claims, work), units))
    finally:
        server.close()
        for release in {job.kernel.release for job in jobs}:
            shutil.rmtree(work / release, ignore_errors=True)
    return [_outcome(t) for t in tasks]


def _task(root: Path, job: Job) -> _Task:
    previous = registry.load_status(root, job.module.name, job.kernel.release)
    log = registry.log_path(root, job.module.name, job.kernel.release)
    return _Task(job, log, previous.files if previous else ())


def _prepare(root: Path, task: _Task, work: Path, cores: int) -> None:
    """Start the log; evaluate the dkms.conf for the kernel; decide what needs no build."""
    module, kernel = task.job.module, task.job.kernel
    task.log.parent.mkdir(parents=True, exist_ok=True)
    task.log.write_text(f"# {module.name} {module.version} for {kernel.release}\n")
    try:
        if module.kind == "dkms":
            task.ctx = steps.context(root, work, module, kernel, cores)
            task.conf = conf = steps.evaluate(root, module, task.ctx)
            _note(task.log, [f"dkms.conf: {m}" for m in conf.messages])
            if not task.job.explicit and not conf.autoinstall:
                return task.decide(
                    "skipped", "dkms.conf AUTOINSTALL is not yes; build it with `distkernel modules rebuild`"
                )
            if conf.exclusion:
                uninstall(kernel.modules_dir, task.kept)
                return task.decide("excluded", conf.exclusion, files=())
        if not (kernel.headers / "Makefile").is_file():
            task.decide("failed", f"no headers tree at {kernel.headers} (it has no Makefile)")
        hosttools.ensure(kernel.headers, task.log)  # its fixdep, modpost... runnable here
    except Exception as e:  # a module must never break the kernel's install
        task.decide("failed", _why(e, task.log))


def _waves(tasks: Sequence[_Task]) -> list[list[_Task]]:
    """The tasks left to build, in BUILD_DEPENDS order: each wave after the ones holding
    the modules it depends on (for the same kernel). A cycle fails its members."""
    todo = [t for t in tasks if t.status is None]
    by_name = {(t.job.kernel.release, n): t for t in todo for n in _names(t.job.module)}
    level: dict[int, int] = {}

    def depth(task: _Task, seen: tuple[_Task, ...]) -> int:
        if any(t is task for t in seen):
            raise ValueError(" -> ".join(t.job.module.name for t in (*seen, task)))
        if id(task) not in level:
            deps = [by_name.get((task.job.kernel.release, d)) for d in (task.conf.build_depends if task.conf else ())]
            level[id(task)] = max((depth(d, (*seen, task)) + 1 for d in deps if d), default=0)
        return level[id(task)]

    waves: dict[int, list[_Task]] = {}
    for task in todo:
        try:
            waves.setdefault(depth(task, ()), []).append(task)
        except ValueError as cycle:
            task.decide("failed", f"BUILD_DEPENDS form a cycle: {cycle}")
    return [waves[n] for n in sorted(waves)]


def _names(module: Registered) -> set[str]:
    return {module.name, module.dkms_module[0]}


def plan(root: Path, jobs: Sequence[Job], confs: Sequence[dkms.DkmsConf | None] | None = None) -> list[list[int]]:
    """Units of work (indexes into JOBS): the groupable modules of each kernel in one
    group, Kbuild spreading their objects over the jobserver's tokens; alone: the others
    (their own MAKE, scripts or folder-bound Makefiles) and modules whose last build
    failed somewhere (a known-broken module must not make its group build twice)."""
    units: list[list[int]] = []
    per_kernel: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        conf = confs[i] if confs else None
        if _groupable(root, job.module, conf):
            per_kernel.setdefault(job.kernel.release, []).append(i)
        else:
            units.append([i])
    return [*per_kernel.values(), *units]


def _groupable(root: Path, module: Registered, conf: dkms.DkmsConf | None) -> bool:
    if any(s.status == "failed" for s in registry.statuses(root, module.name)):
        return False
    if module.kind == "dkms":
        if conf is None or not conf.default_make or conf.patches or conf.pre_build or conf.post_build:
            return False  # its own MAKE or scripts: built as dkms builds it
        if conf.build_depends or conf.clean not in ("", conf.make_command + " clean"):
            return False
    return steps.groupable(module.source_dir(root))


def _run_unit(root: Path, unit: list[_Task], tasks: list[_Task], server: JobServer, claims: Claims, work: Path) -> None:
    if len(unit) == 1:
        return _guarded(root, unit[0], tasks, server, claims, work, None)
    kernel = unit[0].job.kernel
    top = work / kernel.release / f".group-{unit[0].job.module.name}"  # never a module's name
    folders = {t.job.module.name: top / f"m{n}" for n, t in enumerate(unit)}  # names safe for make
    try:
        done = steps.build_group(
            folders, {t.job.module.name: t.job.module.source_dir(root) for t in unit}, kernel, top, server
        )
        group = (folders, done.output) if done and done.code == 0 else None
        for task in unit:
            _guarded(root, task, tasks, server, claims, work, group)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _guarded(
    root: Path,
    task: _Task,
    tasks: list[_Task],
    server: JobServer,
    claims: Claims,
    work: Path,
    group: tuple[dict[str, Path], str] | None,
) -> None:
    """One task; whatever goes wrong becomes a failed status, never the kernel's problem."""
    try:
        _build(root, task, tasks, server, claims, work, group)
    except Exception as e:
        task.decide("failed", _why(e, task.log))
    finally:
        shutil.rmtree(steps.workspace(work, task.job.module, task.job.kernel), ignore_errors=True)
        task.seal(root)


def _build(
    root: Path,
    task: _Task,
    tasks: list[_Task],
    server: JobServer,
    claims: Claims,
    work: Path,
    group: tuple[dict[str, Path], str] | None,
) -> None:
    module, kernel, conf = task.job.module, task.job.kernel, task.conf
    if missing := _missing_depends(root, task, tasks):
        return task.decide("failed", missing)
    made: list[Product] | str | None = _from_group(group, module.name, conf, task.log) if group else None
    if made is None:  # not grouped, or its group's make did not give it its modules
        made = _alone(root, task, work, server)
    if isinstance(made, str):
        return task.decide("failed", made + (" (previous build kept)" if task.kept else ""))
    signed = _strip_and_sign(root, kernel, made, task.log)
    if conf and task.ctx:
        steps.post_build(task.ctx, conf, kernel, server, task.log)
    if clash := claims.install(
        module.name, kernel.release, kernel.modules_dir, [(p.src, p.dest) for p in made], task.kept
    ):
        return task.decide("failed", clash)
    if conf and task.ctx and conf.post_install:
        if root.resolve() == Path("/"):
            steps.run_step("script", conf.post_install, task.ctx, conf, kernel, server, task.log)
        else:
            _note(task.log, [f"POST_INSTALL {conf.post_install!r} not run: {root} is not this machine's root"])
    names = tuple(Path(p.dest).name.removesuffix(".ko") for p in made)
    task.decide("built", files=tuple(p.dest for p in made), modules=names, signed=signed)


def _missing_depends(root: Path, task: _Task, tasks: list[_Task]) -> str:
    """Why a BUILD_DEPENDS of TASK is not there for its kernel ("" when all are built)."""
    release = task.job.kernel.release
    for dep in task.conf.build_depends if task.conf else ():
        this_run = [t for t in tasks if t.job.kernel.release == release and dep in _names(t.job.module)]
        if this_run:
            status = this_run[0].status
        else:
            known = [m for m in registry.registered(root) if dep in _names(m)]
            if not known:
                return f"BUILD_DEPENDS {dep} is not registered; add it with `distkernel modules add`"
            status = registry.load_status(root, known[0].name, release)
        if status is None or status.status != "built":
            return f"BUILD_DEPENDS {dep} is not built for {release} ({status.status if status else 'never built'})"
    return ""


def _from_group(
    group: tuple[dict[str, Path], str], name: str, conf: dkms.DkmsConf | None, log: Path
) -> list[Product] | None:
    folders, output = group
    made = steps.products(conf, folders[name])
    if not made or not all(p.src.is_file() for p in made):
        return None
    with open(log, "a") as f:
        f.write(f"# built in one make with: {', '.join(folders)}\n{output}")
    return made


def _alone(root: Path, task: _Task, work: Path, server: JobServer) -> list[Product] | str:
    module, kernel = task.job.module, task.job.kernel
    if task.conf and task.ctx:
        return steps.build_dkms(kernel, task.conf, task.ctx, server, task.log)
    copy = steps.workspace(work, module, kernel) / "build"
    return steps.build_kbuild(root, module, kernel, copy, server, task.log)


def _strip_and_sign(root: Path, kernel: Kernel, made: list[Product], log: Path) -> str:
    """Strip debug info (like INSTALL_MOD_STRIP=1, unless STRIP[#]=no), then sign: the
    signature must be last."""
    for p in made:
        if p.strip:
            run([kernel.tool("strip"), "--strip-debug", p.src], log=log, what=f"strip {p.src.name}")
    if not signing.signs_modules(kernel.config):
        return ""
    key = signing.root_module_key(root)
    if key is None:
        _note(log, [f"not signed: no module key at {root / signing.KEY_DIR} (the kernel has CONFIG_MODULE_SIG=y)"])
        return signing.UNSIGNED
    tool = signing.sign_file(kernel.headers, root / WORK, log)
    for p in made:
        signing.sign_module(tool, kernel.config, key, p.src, log)
    return signing.SIGNED


def _outcome(task: _Task) -> ModuleOutcome:
    module, status = task.job.module, task.status
    assert status is not None and task.saved
    return ModuleOutcome(
        name=module.name,
        version=module.version,
        ok=status.status != "failed",
        required=module.required,
        in_initramfs=status.modules if module.initramfs and status.status == "built" else (),
        log=task.log,
        reason=status.reason,
        release=status.release,
        status=status.status,
        signed=status.signed,
        files=status.files,
        seconds=status.seconds,
    )


def _why(e: Exception, log: Path) -> str:
    with open(log, "a") as f:
        f.write(traceback.format_exc())
    return e.message if isinstance(e, DistkernelError) else f"{type(e).__name__}: {e}"


def _note(log: Path, lines: Sequence[str]) -> None:
    if lines:
        with open(log, "a") as f:
            f.write("".join(f"# {line}\n" for line in lines))
