"""Assemble a .config from labelled inputs applied in order (a later input wins),
let the kernel's own `make olddefconfig` resolve it, compare what was asked with what
took, and explain every miss from the Kconfig tree of the same source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from distkernel.build.compile.kbuild import Kbuild
from distkernel.build.config import tailor
from distkernel.build.config.bases import Start, start_config
from distkernel.build.config.explain import Explainer
from distkernel.build.config.features import load_feature
from distkernel.build.config.kconfig import load_tree
from distkernel.build.config.report import ConfigReport, build_report
from distkernel.build.config.signing import module_sig_settings
from distkernel.build.config.values import Origin, Setting, merge_into, parse_fragment, read_config, read_text_any
from distkernel.build.recipe import Recipe
from distkernel.core import cache
from distkernel.core.errors import UserError
from distkernel.core.progress import Progress, current, step

CONFIG_D = Path("etc/kernel/config.d")


@dataclass(frozen=True)
class ResolvedConfig:
    path: Path  # the effective .config (in the build dir)
    sha256: str
    kernel_release: str
    report: ConfigReport


@dataclass(frozen=True)
class Context:
    """What inputs may look at besides the recipe."""

    recipe: Recipe
    root: Path  # the target root (config.d, base = "running")
    base: dict[str, str]  # the starting config's values


def target_root(recipe: Recipe) -> Path:
    return recipe.config.root or Path("/")


def _fragments(ctx: Context) -> list[Setting]:
    r = ctx.recipe
    return [s for f in r.config.fragments for s in parse_fragment(f, r.display(f), echo=r.owns(f))]


def _localversion(ctx: Context) -> list[Setting]:
    r = ctx.recipe
    if not r.kernel.localversion:
        return []
    origin = Origin(r.display(r.path), r.line("kernel", "localversion"))
    return [Setting("CONFIG_LOCALVERSION", '"' + r.kernel.localversion + '"', origin)]


def _features(ctx: Context) -> list[Setting]:
    """Profiles enable things: their `=m` keeps a built-in `=y` of the base."""
    out = []
    for name in ctx.recipe.config.features:
        for s in load_feature(name).settings:
            keep_y = s.value == "m" and ctx.base.get(s.symbol) == "y"
            out.append(replace(s, value="y") if keep_y else s)
    return out


def config_d_files(recipe: Recipe) -> list[Path]:
    if not recipe.config.config_d:
        return []
    return sorted((target_root(recipe) / CONFIG_D).glob("*.config"))


def _config_d(ctx: Context) -> list[Setting]:
    return [s for f in config_d_files(ctx.recipe) for s in parse_fragment(f)]


def _options(ctx: Context) -> list[Setting]:
    r = ctx.recipe
    where = Origin(r.display(r.path), r.line("config", "options"))
    return [Setting(symbol, value, where) for symbol, value in r.config.options.items()]


# The inputs merged over the starting config (the base, or the savedconfig that
# replaces it: bases.start_config), in the order they apply; a later input wins.
INPUTS: tuple[tuple[str, Callable[[Context], list[Setting]]], ...] = (
    ("fragments", _fragments),
    ("localversion", _localversion),
    ("features", _features),
    ("config.d", _config_d),
    ("options", _options),
    ("--set", lambda ctx: [Setting(s, v, Origin("--set")) for s, v in ctx.recipe.config.overrides.items()]),
    # [sign] modules (config/signing.py) comes last: neither the recipe nor --set turns signing off unseen
    ("sign", lambda ctx: module_sig_settings(ctx.recipe)),
)


def requested_settings(ctx: Context) -> list[Setting]:
    return [s for _, read in INPUTS for s in read(ctx)]


def optional_settings(recipe: Recipe) -> dict[str, str]:
    """Feature options that may not take on every base, with the profile's reason."""
    out = {}
    for name in recipe.config.features:
        for symbol, why in load_feature(name).optional.items():
            out[symbol] = f"optional in feature {name}: {why}"
    return out


def config_key(recipe: Recipe) -> dict[str, object]:
    """Everything outside the recipe and distkernel's code that decides the .config."""
    spec = recipe.config
    base = spec.base
    files = [*spec.fragments, *config_d_files(recipe)]
    if spec.savedconfig is not None:
        files += sorted(p for p in spec.savedconfig.iterdir() if p.is_file())
    if recipe.base_file is not None:
        files.append(recipe.base_file)
    if spec.tailor is not None:
        files.append(spec.tailor)
    doc: dict[str, object] = {"base": base, "files": {str(p): cache.sha256_file(p) for p in files}}
    if spec.overrides:  # --set: not in the recipe file, so not in its hash
        doc["set"] = spec.overrides
    if base == "running" or base.startswith("debian"):
        doc["base_text"] = cache.sha256_bytes(_base_text(recipe).encode())
    return doc


def _base_text(recipe: Recipe) -> str:
    from distkernel.build.config.bases import debian_config, running_config

    base = recipe.config.base
    path = running_config(target_root(recipe))[0] if base == "running" else debian_config(recipe.kernel.arch, base)
    return read_text_any(path)


def kernel_release(version: str, effective: dict[str, str]) -> str:
    return version + effective.get("CONFIG_LOCALVERSION", '""').strip('"')


def _merge_and_resolve(kb: Kbuild, requested: list[Setting], log: Path, progress: Progress) -> None:
    step(progress, "config", "merge")
    config = kb.build_dir / ".config"
    config.write_text(merge_into(config.read_text(), [(s.symbol, s.value) for s in requested]))
    step(progress, "config", "olddefconfig")
    kb.make("olddefconfig", log=log)


def _new_options(start: Start, effective: dict[str, str], asked: set[str]) -> tuple[tuple[str, str], ...]:
    """Options the savedconfig did not know (nor the recipe asks for), as olddefconfig chose."""
    if start.saved is None:
        return ()
    old = read_config(start.saved.path)
    return tuple((s, v) for s, v in effective.items() if s not in old and s not in asked)


def resolve_config(recipe: Recipe, kb: Kbuild, log: Path, progress: Progress | None = None) -> ResolvedConfig:
    """Write the effective .config into the build dir and report on it; each sub-step
    (base, merge, olddefconfig, tailor, explain) is a step of the progress."""
    progress = progress or current()
    root = target_root(recipe)
    step(progress, "config", "base")
    start = start_config(recipe, kb, root, log)
    config = kb.build_dir / ".config"
    ctx = Context(recipe, root, read_config(config))
    requested = requested_settings(ctx)
    _merge_and_resolve(kb, requested, log, progress)
    notes, numbers = list(start.notes), None
    if recipe.config.tailor is not None:
        untailored = read_config(config)
        host = tailor.load_probe(recipe.config.tailor)
        step(progress, "config", "tailor")
        tailor.localmodconfig(kb, host, log)
        _merge_and_resolve(kb, requested, log, progress)  # what the recipe asks for survives tailoring
        numbers = tailor.measure(kb, host, untailored, read_config(config))
        notes.append(tailor.note(host, numbers))
    effective = read_config(config)
    report = build_report(start.label, ctx.base, requested, effective, optional_settings(recipe))
    report = replace(
        report,
        notes=tuple(notes),
        new_options=_new_options(start, effective, {s.symbol for s in requested}),
        tailoring=numbers,
    )
    step(progress, "config", "explain")
    report = explain_misses(report, kb, effective, requested)
    return ResolvedConfig(config, cache.sha256_file(config), kernel_release(kb.source.version, effective), report)


def explain_misses(
    report: ConfigReport, kb: Kbuild, effective: dict[str, str], requested: list[Setting]
) -> ConfigReport:
    """Fill in the reason of every entry that did not take (parses Kconfig only then)."""
    missed = [e for e in report.entries if not e.took]
    if not missed:
        return report
    tree = load_tree(kb.source.path, kb.arch.srcarch)
    ex = Explainer(tree, effective, {s.symbol: s for s in requested})
    entries = []
    for e in report.entries:
        if not e.took:
            why = ex.why(e.symbol, e.requested)
            e = replace(e, reason=why.text, fix=why.fix)
        entries.append(e)
    return replace(report, entries=tuple(entries))


def check_strict(recipe: Recipe, report: ConfigReport, strict: bool | None) -> None:
    """With strict, a requested value that did not take, or two inputs that disagree,
    fails before anything compiles."""
    if not (recipe.config.strict if strict is None else strict):
        return
    misses, conflicts = report.misses, report.conflicts
    if not misses and not conflicts:
        return
    problems = [f"{len(misses)} requested option(s) did not take"] if misses else []
    problems += [f"{len(conflicts)} option(s) set differently by two inputs"] if conflicts else []
    raise UserError(
        f"{recipe.line_of('config', 'strict')}: config.strict: {' and '.join(problems)}; fix them or drop "
        f"them (`distkernel config {recipe.path}` explains)",
        details=[e.describe() for e in (*misses, *conflicts)],
    )
