"""One module's build as dkms runs it (or, for a plain Kbuild module, as `make M=`
does): in a fresh copy of its source, with the working folder and PWD set to that
copy, every step (PATCH, PRE_BUILD, CLEAN, MAKE, POST_BUILD) through bash with dkms's
variables (data/dkms/run.sh), the make a client of the shared jobserver. A failure is
its reason (the first real error of the make), never an exception."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from distkernel.build.compile import kbuild
from distkernel.core.tools import Finished
from distkernel.target.extmod import dkms
from distkernel.target.extmod.jobserver import JobServer
from distkernel.target.extmod.kernel import Kernel
from distkernel.target.extmod.registry import Registered

DEFAULT_DEST = "updates"
# Makefile text that ties a module to the folder make runs it from: such a module is
# built alone, in its own copy, never as a subfolder of a group make.
_FOLDER_BOUND = re.compile(r"\bPWD\b|\bCURDIR\b|shell +pwd|\$[({]M[)}]|\bKBUILD_EXTMOD\b")
_MAKEFILES = ("Makefile*", "Kbuild*", "*.mk", "GNUmakefile")


@dataclass(frozen=True)
class Product:
    """A module a build made and where it goes."""

    src: Path  # the built .ko
    dest: str  # its place, relative to lib/modules/RELEASE
    strip: bool = True


@cache
def _run_script() -> str:
    return resources.files("distkernel.target.data").joinpath("dkms/run.sh").read_text()


def workspace(work: Path, module: Registered, kernel: Kernel) -> Path:
    """This job's folder: WORK/RELEASE/NAME (removed with WORK/RELEASE after the run)."""
    return work / kernel.release / module.name


def context(root: Path, work: Path, module: Registered, kernel: Kernel, cores: int) -> dkms.Context:
    """dkms's variables for building MODULE for KERNEL: its own dkms and source trees
    (with `source` links to the registered copy, as `dkms add` makes them)."""
    name, version = module.dkms_module
    top = workspace(work, module, kernel)
    ctx = dkms.Context(
        kernelver=kernel.release,
        arch=kernel.machine,
        kernel_source_dir=kernel.headers,
        dkms_tree=top / "dkms",
        source_tree=top / "src",
        install_tree=kernel.modules_dir.parent,
        module=name,
        module_version=version,
        parallel_jobs=cores,
        running_distribution=dkms.running_distribution(root),
    )
    source = module.source_dir(root)
    for link in (ctx.dkms_tree / name / version / "source", ctx.source_tree / f"{name}-{version}"):
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(source)
    return ctx


def evaluate(root: Path, module: Registered, ctx: dkms.Context) -> dkms.DkmsConf:
    """MODULE's dkms.conf for CTX's kernel, sourced from a fresh copy of its folder (the
    build folder to be): a $PWD it expands at that time (`M=$PWD`) then names the copy,
    and nothing it or the build does can write into the registered source."""
    fresh_copy(module.source_dir(root), ctx.build_dir)
    return dkms.evaluate(ctx.build_dir / "dkms.conf", ctx, overrides=root / "etc/dkms", cwd=ctx.build_dir)


def groupable(source: Path) -> bool:
    """Whether the module's Makefiles leave it free to be built as a subfolder of
    another make's M= folder (they do not use PWD, CURDIR, M and the like)."""
    for pattern in _MAKEFILES:
        for path in source.rglob(pattern):
            try:
                if path.is_file() and _FOLDER_BOUND.search(path.read_text(errors="replace")):
                    return False
            except OSError:
                return False
    return True


def fresh_copy(source: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, dest, symlinks=True)


def _logged(log: Path, done: Finished) -> Finished:
    with open(log, "a") as f:
        f.write(done.output if done.output.endswith("\n") or not done.output else done.output + "\n")
    return done


def run_step(
    step: str, command: str, ctx: dkms.Context, conf: dkms.DkmsConf, kernel: Kernel, server: JobServer, log: Path
) -> Finished:
    """One dkms step (make, clean, script, patch) in CTX's build folder, holding a job slot."""
    variables = {
        **ctx.variables(),
        "build_dir": str(ctx.build_dir),
        "PACKAGE_NAME": conf.package_name,
        "PACKAGE_VERSION": conf.package_version,
    }
    argv = [
        *("bash", "--noprofile", "--norc", "-c", _run_script(), "dkms", step),
        *(f"{k}={v}" for k, v in variables.items()),
        *("--", command),
    ]
    fds = (server.read_fd, server.write_fd)
    with server.slot():
        done = kbuild.run_client(argv, ctx.build_dir, server.makeflags(), fds, kernel.cross_env())
    return _logged(log, done)


def build_dkms(
    kernel: Kernel, conf: dkms.DkmsConf, ctx: dkms.Context, server: JobServer, log: Path
) -> list[Product] | str:
    """dkms's prepare_build and actual_build in the copy `evaluate` made: its built
    modules, or why it failed."""
    build = ctx.build_dir
    for patch in conf.patches:
        done = run_step("patch", patch, ctx, conf, kernel, server, log)
        if done.code != 0:
            return f"PATCH {patch} did not apply: {_tidy(kbuild.first_error(done.output) or done.output, build)}"
    if conf.pre_build:  # as dkms: how it ends does not matter
        run_step("script", conf.pre_build, ctx, conf, kernel, server, log)
    if conf.clean:
        run_step("clean", conf.clean, ctx, conf, kernel, server, log)
    done = run_step("make", conf.make_command, ctx, conf, kernel, server, log)
    if done.code != 0:
        return _tidy(kbuild.first_error(done.output) or f"MAKE exited {done.code}", build)
    return _complete(products(conf, build), build)


def post_build(ctx: dkms.Context, conf: dkms.DkmsConf, kernel: Kernel, server: JobServer, log: Path) -> None:
    if conf.post_build:
        run_step("script", conf.post_build, ctx, conf, kernel, server, log)


def build_kbuild(
    root: Path, module: Registered, kernel: Kernel, copy: Path, server: JobServer, log: Path
) -> list[Product] | str:
    """`make -C HEADERS M=COPY modules` on a fresh copy: its modules, or why it failed."""
    fresh_copy(module.source_dir(root), copy)
    argv = kbuild.external_modules_argv(kernel.headers, copy, kernel.make_vars())
    with server.slot():
        done = kbuild.run_client(argv, copy, server.makeflags(), (server.read_fd, server.write_fd))
    _logged(log, Finished(done.code, "$ " + " ".join(argv) + "\n" + done.output))
    if done.code != 0:
        return _tidy(kbuild.first_error(done.output) or f"make exited {done.code}", copy)
    return _complete(products(None, copy), copy)


def build_group(
    folders: dict[str, Path], sources: dict[str, Path], kernel: Kernel, work: Path, server: JobServer
) -> Finished | None:
    """One make for several modules, each a subfolder of WORK (M=): its result, or None
    when the copies could not be made."""
    try:
        shutil.rmtree(work, ignore_errors=True)
        for name, folder in folders.items():
            fresh_copy(sources[name], folder)
        (work / "Kbuild").write_text("".join(f"obj-m += {folder.name}/\n" for folder in folders.values()))
    except OSError:
        return None
    argv = kbuild.external_modules_argv(kernel.headers, work, kernel.make_vars())
    with server.slot():
        done = kbuild.run_client(argv, work, server.makeflags(), (server.read_fd, server.write_fd))
    return Finished(done.code, "$ " + " ".join(argv) + "\n" + done.output)


def products(conf: dkms.DkmsConf | None, folder: Path) -> list[Product]:
    """Each module the build in FOLDER should have made (dkms.conf's BUILT_MODULE_*),
    or every .ko it made (a plain module), and where each goes."""
    if conf is None:
        return [Product(ko, f"{DEFAULT_DEST}/{ko.name}") for ko in sorted(folder.rglob("*.ko"))]
    return [Product(folder / m.location / f"{m.name}.ko", f"{m.dest}/{m.dest_name}.ko", m.strip) for m in conf.modules]


def _complete(made: list[Product], folder: Path) -> list[Product] | str:
    missing = [str(p.src.relative_to(folder)) for p in made if not p.src.is_file()]
    if missing or not made:
        return f"make succeeded but did not build {', '.join(missing) or 'any .ko'}"
    return made


def _tidy(reason: str, folder: Path) -> str:
    """A reason without the build copy's path, which says nothing to the reader."""
    return reason.strip().replace(f"{folder}/", "").replace(str(folder), ".")
