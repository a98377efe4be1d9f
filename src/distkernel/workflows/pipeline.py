"""recipe -> source -> config -> compile -> package, with a content-addressed cache of
finished packages: the same inputs never run make twice."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from distkernel import __version__
from distkernel.build.ahead import HeadersAhead
from distkernel.build.compile.distribute import choose
from distkernel.build.compile.kbuild import Kbuild, ccache_usable
from distkernel.build.compile.kernel import BuildResult, compile_kernel
from distkernel.build.config.assemble import ResolvedConfig, check_strict, config_key, resolve_config
from distkernel.build.config.inputs import check_inputs
from distkernel.build.config.report import ConfigReport
from distkernel.build.package.format import FORMAT, Metadata
from distkernel.build.package.reader import read_metadata
from distkernel.build.package.writer import Part, write_package
from distkernel.build.payload import header_members, install_modules, kernel_members, module_members
from distkernel.build.recipe_model import Recipe
from distkernel.build.source import SourceTree, prepare_source, source_key
from distkernel.build.toolchain import BUILD_ENV, toolchain_versions
from distkernel.build.trust.modsign import link_module_key
from distkernel.build.trust.recipe_signers import boot_image, manifest_signer, signers
from distkernel.core import cache
from distkernel.core.arch import get_arch
from distkernel.core.progress import Progress, Silent, step
from distkernel.core.progress import describe as describe_step


@dataclass(frozen=True)
class ConfigOutcome:
    source: SourceTree
    config: ResolvedConfig
    kbuild: Kbuild


@dataclass(frozen=True)
class BuildOutcome:
    package: Path
    metadata: Metadata
    cached: bool  # answered from the package cache: make did not run
    key: str
    seconds: float
    report: ConfigReport | None = None
    build: BuildResult | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


def build_id(recipe: Recipe, skey: str) -> str:
    k = recipe.kernel
    return f"{k.name}-{k.arch}{'+' + k.variant if k.variant else ''}-{skey[:16]}"


# What decides a package's bytes: the two lower layers, whole (code and data), and this
# module. Derived from the folders rather than listed, so a file added to the build side
# costs a rebuild, never a stale package; the target side and the CLI do not count.
BUILD_SIDE = ("core", "build", "workflows/pipeline.py")


def fingerprint_of(top: Path) -> str:
    """The build side's bytes under TOP (the distkernel package folder), names included."""
    return cache.tree_sha256(top, BUILD_SIDE)


@functools.cache
def code_fingerprint() -> str:
    """distkernel's own build-side code and data decide the package bytes too."""
    return fingerprint_of(Path(__file__).parent.parent)


def inputs_key(recipe: Recipe) -> tuple[str, dict[str, object]]:
    """Everything that decides the package's bytes, hashed."""
    arch = get_arch(recipe.kernel.arch)
    doc: dict[str, object] = {
        "distkernel": __version__,
        "code": code_fingerprint(),
        "format": FORMAT,
        "recipe": recipe.sha256,
        "source": source_key(recipe),
        "config": config_key(recipe),
        "toolchain": toolchain_versions(arch),
        "env": {k: os.environ[k] for k in BUILD_ENV if k in os.environ},
        "sign": signers(recipe),  # public fingerprints: a new key is a new package
    }
    return cache.sha256_bytes(json.dumps(doc, sort_keys=True).encode()), doc


def _workdir(recipe: Recipe, skey: str, fresh: bool) -> Path:
    # A fresh build's folder has a name of its own that stays the same from one fresh
    # build to the next (emptied first, under the build's lock): objtool's objects carry
    # the build folder's path, so a new name each time is a ccache miss for each of them.
    return cache.cache_dir("build") / (build_id(recipe, skey) + ("-fresh" if fresh else ""))


def configure(
    recipe: Recipe, work: Path, *, strict: bool | None = None, progress: Progress | None = None, jobs: int = 0
) -> ConfigOutcome:
    """Source and config stages; with `strict`, a requested value that did not take
    fails here, before anything compiles. JOBS: make -j here (0: the recipe's, else
    every core)."""
    progress = progress or Silent()
    check_inputs(recipe)
    progress.stage("source")
    source = prepare_source(recipe)
    arch = get_arch(recipe.kernel.arch)
    kb = Kbuild(source, work / "obj", arch, ccache=ccache_usable(recipe.build.ccache), jobs=jobs or recipe.build.jobs)
    link_module_key(recipe, kb.build_dir)
    progress.stage("config")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "config.log"
    log.write_text("")
    resolved = resolve_config(recipe, kb, log, progress)
    check_strict(recipe, resolved.report, strict)
    return ConfigOutcome(source, resolved, kb)


def _cached(key: str) -> Path | None:
    entry = cache.cache_dir("packages") / key
    try:
        record = json.loads((entry / "record.json").read_text())
        pkg = entry / str(record["file"])
        if cache.sha256_file(pkg) == record["sha256"]:
            return pkg
    except (OSError, ValueError, KeyError):
        pass
    return None


def _store(key: str, built: Path) -> Path:
    """BUILT (written whole and fsynced by the writer) moved into the package cache."""
    entry = cache.cache_dir("packages") / key
    target = entry / built.name
    cache.atomic_copy(built, target, link=True)
    built.unlink()
    record = {"file": built.name, "sha256": cache.sha256_file(target)}
    cache.atomic_write_text(entry / "record.json", json.dumps(record, indent=1))
    return target


def _deliver(pkg: Path, out: Path) -> Path:
    """The cached package in OUT: a hard link where it can be (distkernel replaces a
    package file whole, never in place; a cache hit checks the bytes anyway)."""
    target = out / pkg.name
    if target.resolve() != pkg.resolve():
        cache.atomic_copy(pkg, target, link=True)
    return target


def build_package(
    recipe: Recipe,
    out: Path,
    *,
    jobs: int = 0,
    fresh: bool = False,
    strict: bool | None = None,
    progress: Progress | None = None,
) -> BuildOutcome:
    """The package for this recipe in `out`: from the cache when nothing changed, else
    built (in the recipe's persistent build dir, or a new one with `fresh`)."""
    start = time.monotonic()
    progress = progress or Silent()
    check_inputs(recipe)
    key, doc = inputs_key(recipe)
    if not fresh and (hit := _cached(key)):
        delivered = _deliver(hit, out)
        return BuildOutcome(delivered, read_metadata(delivered), True, key, time.monotonic() - start)
    work = _workdir(recipe, str(doc["source"]), fresh)
    timings: dict[str, float] = {}
    # A fresh build's dir is emptied first and kept after the build (its logs) until
    # the next fresh one.
    with cache.locked(f"build-{work.name}"), cache.emptied(work) if fresh else contextlib.nullcontext():
        pkg, metadata, report, built = _build_in(recipe, work, out, key, doc, jobs, strict, _Timed(progress, timings))
    timings = {k: round(v, 2) for k, v in timings.items()}
    return BuildOutcome(pkg, metadata, False, key, time.monotonic() - start, report, built, timings)


class _Timed:
    """Passes progress through and records how long each stage took."""

    def __init__(self, inner: Progress, timings: dict[str, float]):
        self.inner, self.timings = inner, timings
        self.current: str | None = None
        self.since = time.monotonic()

    def stage(self, name: str, total: int | None = None) -> None:
        now = time.monotonic()
        if self.current:
            self.timings[self.current] = self.timings.get(self.current, 0.0) + now - self.since
        self.current, self.since = name, now
        self.inner.stage(name, total)

    def update(self, done: int, total: int | None = None) -> None:
        self.inner.update(done, total)

    def describe(self, text: str) -> None:
        describe_step(self.inner, text)


def _build_in(
    recipe: Recipe,
    work: Path,
    out: Path,
    key: str,
    doc: dict[str, object],
    jobs: int,
    strict: bool | None,
    progress: Progress,
) -> tuple[Path, Metadata, ConfigReport, BuildResult]:
    dist = choose(recipe.build, os.environ)  # where objects compile: never part of the key
    configured = configure(recipe, work, strict=strict, progress=progress, jobs=jobs)
    jobs = jobs or recipe.build.jobs or (dist.slots() if dist else 0) or (os.cpu_count() or 1)
    log = work / "logs" / "build.log"
    with HeadersAhead(configured.kbuild, work, configured.source.date) as ahead:
        built = compile_kernel(configured.kbuild, configured.config.sha256, jobs, log, progress, dist, ahead.on_line)
        progress.stage("package")
        toolchain = dict(doc["toolchain"])  # type: ignore[call-overload]
        staged = make_package(recipe, configured, built, work, toolchain, progress, ahead.take())
    step(progress, "package", "store")
    stored = _store(key, staged)
    delivered = _deliver(stored, out)
    progress.stage("done")
    return delivered, read_metadata(delivered), configured.config.report, built


def make_package(
    recipe: Recipe,
    configured: ConfigOutcome,
    built: BuildResult,
    work: Path,
    toolchain: dict[str, str],
    progress: Progress | None = None,
    headers: Part | None = None,
) -> Path:
    """Package a finished build into `work/out/`: modules_install, payload, metadata.
    Each sub-step is a stage of PROGRESS (`package: write`), so the build's timings say
    where packaging spends its time. HEADERS: the headers part made during the compile
    (build/ahead.py), when it still stands."""
    kb, resolved = configured.kbuild, configured.config
    progress = progress or Silent()
    step(progress, "package", "modules_install")
    moddir = install_modules(kb, built.kernel_release, work / "stage", work / "logs" / "package.log")
    step(progress, "package", "image")
    image = boot_image(recipe, built.image, work, configured.source.date, work / "logs" / "package.log")
    step(progress, "package", "headers")
    heads = list(headers.members) if headers is not None else header_members(kb, work / "host-tools")
    with open(work / "logs" / "package.log", "a") as log:
        log.write(f"headers part: {'made during the compile' if headers else 'made now'}\n")
    members = kernel_members(kb, image) + module_members(moddir) + heads
    metadata = Metadata(
        name=recipe.kernel.name,
        variant=recipe.kernel.variant,
        kernel_release=built.kernel_release,
        version=configured.source.version,
        arch=recipe.kernel.arch,
        recipe_sha256=recipe.sha256,
        config_sha256=resolved.sha256,
        source={
            "origin": recipe.kernel.source,
            "key": configured.source.key,
            "patches": ", ".join(p.name for p in recipe.kernel.patches),
        },
        toolchain=toolchain,
        build_date=configured.source.date,
        sizes={},
        image="kernel/vmlinuz",
        modules=sorted(m.path.rsplit("/", 1)[1][:-3] for m in members if m.path.endswith(".ko")),
        extra={
            "signers": signers(recipe),
            "test": {"modules": list(recipe.test.modules)},  # what `distkernel test` loads
            "config": {
                "base": recipe.config.base,
                "requested": len(resolved.report.entries),
                "missed": len(resolved.report.misses),
            },
        },
        distkernel=__version__,
    )
    step(progress, "package", "write")  # hash every file, then compress the payload
    return write_package(work / "out", metadata, members, sign=manifest_signer(recipe), ready=headers)
