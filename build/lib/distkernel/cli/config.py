"""config RECIPE | config upgrade | config diff, and probe: the config engine's commands."""

from __future__ import annotations

import dataclasses
import json
import lzma
import zlib
from pathlib import Path
from typing import Any

import click

from distkernel.build.config.report import ConfigEntry, ConfigReport
from distkernel.build.config.upgrade import ConfigDiff, diff_files, upgrade
from distkernel.build.config.values import read_config
from distkernel.build.recipe import SYMBOL_RE, Recipe, load_recipe, normalize_symbol, normalize_value
from distkernel.build.source import source_key
from distkernel.cli import options, render
from distkernel.core import cache
from distkernel.core.arch import known_arches
from distkernel.core.errors import UserError
from distkernel.workflows.pipeline import build_id, configure

CONFIG_FILE = click.Path(dir_okay=False, path_type=Path)


def _status(e: ConfigEntry) -> str:
    return "took" if e.took else ("optional" if e.optional else "NOT TAKEN")


def _notes(e: ConfigEntry) -> list[render.Note]:
    """Why a value did not take, and the fix on a line of its own (it is what gets copied)."""
    notes = []
    why = e.reason or e.optional or ""
    if why:
        reason, sep, fix = why.partition("; fix: ")
        notes.append(render.Note("why", reason))
        if sep:
            notes.append(render.Note("fix", fix))
    if e.took and e.conflict:
        notes.append(render.Note("", e.overridden()))
    return notes


def show_report(report: ConfigReport, only_misses: bool = False) -> None:
    shown = [e for e in report.entries if not (only_misses and e.took)]
    rows = [(e.symbol, e.requested, e.effective, _status(e), str(e.origin)) for e in shown]
    if rows:
        render.table(None, ("option", "requested", "effective", "status", "from"), rows, [_notes(e) for e in shown])
    for note in report.notes:
        render.prose(f"note: {note}")
    if report.new_options:
        listed = ", ".join(f"{s}={v}" for s, v in report.new_options[:12])
        more = f" and {len(report.new_options) - 12} more (--json lists all)" if len(report.new_options) > 12 else ""
        render.prose(f"new since the savedconfig, defaults chosen: {listed}{more}")
    took = len(report.entries) - len(report.misses) - len(report.skipped)
    extra = f", {len(report.skipped)} optional did not" if report.skipped else ""
    extra += f", {len(report.conflicts)} set by two inputs (later wins)" if report.conflicts else ""
    render.prose(f"{took}/{len(report.entries)} requested values took{extra} ({report.base})")


def parse_overrides(overrides: tuple[str, ...]) -> dict[str, str]:
    """`--set CONFIG_X=y ...`, checked before anything else is read."""
    values: dict[str, str] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        value = normalize_value(raw.strip()) if raw.strip() else None
        if not sep or not SYMBOL_RE.match(name.strip()) or value is None:
            raise UserError(
                f"--set {item}: expected CONFIG_NAME=VALUE (y, m, n, a number or a string), e.g. CONFIG_KVM=y"
            )
        values[normalize_symbol(name.strip())] = value
    return values


def with_overrides(recipe: Path, overrides: tuple[str, ...]) -> Recipe:
    """The recipe with `--set` values as its last config input, shown as from `--set`."""
    values = parse_overrides(overrides)
    r = load_recipe(recipe)
    if not values:
        return r
    return dataclasses.replace(r, config=dataclasses.replace(r.config, overrides=values))


class ConfigGroup(click.Group):
    """`config RECIPE` resolves a recipe; `config upgrade|diff ...` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["recipe", *args]
        return super().parse_args(ctx, args)


@click.group(cls=ConfigGroup)
def config() -> None:
    """Assemble and explain configs.

    \b
    distkernel config RECIPE [--set CONFIG_X=v ...] [--missed] [--out DIR] [--root DIR] [--strict] [--json]
    distkernel config upgrade OLDCONFIG --source debian:linux-source-6.1 [--out FILE] [--json]
    distkernel config diff A B [--json]
    """


@config.command("recipe")
@click.argument("recipe", type=options.RECIPE)
@options.SET
@click.option("--missed", is_flag=True, help="Show only the requested values that did not take.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write the .config here.")
@options.root(
    default=None,
    help='Target root for config.d and base = "running" [default: the recipe\'s config.root, else /].',
)
@options.STRICT
@options.JSON
def config_recipe(
    recipe: Path,
    overrides: tuple[str, ...],
    missed: bool,
    out: Path | None,
    root: Path | None,
    strict: bool | None,
    as_json: bool,
) -> None:
    """Assemble and resolve the recipe's .config, and report every requested value."""
    r = with_overrides(recipe, overrides)
    if root is not None:
        r = dataclasses.replace(r, config=dataclasses.replace(r.config, root=root.resolve()))
    work = cache.cache_dir("build") / build_id(r, source_key(r))
    with cache.locked(f"build-{work.name}"), render.progress() as p:
        outcome = configure(r, work, strict=strict, progress=p)
    resolved = outcome.config
    if out:
        cache.atomic_copy(resolved.path, out / f"config-{resolved.kernel_release}")
    if as_json:
        render.emit_json(
            {"kernel_release": resolved.kernel_release, "config_sha256": resolved.sha256, **resolved.report.to_json()}
        )
    else:
        show_report(resolved.report, only_misses=missed)


def a_config(path: Path) -> Path:
    """A kernel .config (plain, .gz or .xz): it must hold at least one CONFIG_ line."""
    if not path.is_file():
        raise UserError(f"{path}: no such config file; pass a kernel .config (plain, .gz or .xz)")
    try:
        values = read_config(path)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        raise UserError(f"{path}: not a kernel config ({e}); pass a .config, /proc/config.gz or a .xz of one") from None
    if not values:
        raise UserError(f"{path}: not a kernel config (no CONFIG_ lines); pass a .config, /proc/config.gz or a .xz")
    return path


def _diff_rows(d: ConfigDiff, why: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    why = why or {}
    rows: list[tuple[str, ...]] = [(k, "-", v, "new", "") for k, v in d.added.items()]
    rows += [(k, v, "-", "removed", why.get(k, "")) for k, v in d.removed.items()]
    rows += [(k, a, b, "changed", why.get(k, "")) for k, (a, b) in d.changed.items()]
    return rows


@config.command("upgrade")
@click.argument("oldconfig", type=CONFIG_FILE)
@click.option("--source", default="debian:linux-source-6.1", show_default=True, help="debian:NAME or dir:PATH.")
@click.option("--arch", type=click.Choice(known_arches()), default="x86_64", show_default=True)
@click.option("--out", type=CONFIG_FILE, help="Write the upgraded config here.")
@click.option("--derived", is_flag=True, help="Also list the new symbols without a prompt (--json always does).")
@options.JSON
def config_upgrade(oldconfig: Path, source: str, arch: str, out: Path | None, derived: bool, as_json: bool) -> None:
    """Bring OLDCONFIG to another kernel with olddefconfig: the new questions and the
    values chosen, options removed, values changed (with why)."""
    with render.progress():
        result = upgrade(a_config(oldconfig), source, arch)
    if out:
        cache.atomic_copy(result.config, out)
    if as_json:
        render.emit_json(result.to_json())
        return
    render.table(None, ("option", "old", "new", "status", "why"), result.rows(derived))
    render.out.print(
        f"{oldconfig} -> {result.version}: {result.summary(derived)}; config: {out or result.config}", markup=False
    )


@config.command("diff")
@click.argument("a", type=CONFIG_FILE)
@click.argument("b", type=CONFIG_FILE)
@options.JSON
def config_diff(a: Path, b: Path, as_json: bool) -> None:
    """Options that differ between configs A and B (plain, .gz or .xz)."""
    d = diff_files(a_config(a), a_config(b))
    if as_json:
        render.emit_json(d.to_json())
        return
    render.table(None, ("option", str(a), str(b), "status"), [r[:4] for r in _diff_rows(d)])
    render.out.print(f"{len(d.added)} only in B, {len(d.removed)} only in A, {len(d.changed)} changed", markup=False)


@click.command()
@options.ROOT
@click.option("-o", "--output", type=CONFIG_FILE, help="Write host.json here [default: stdout].")
@options.JSON
def probe(root: Path, output: Path | None, as_json: bool) -> None:
    """Record what this host needs from a kernel (for a recipe's `tailor = "host.json"`).
    The record is JSON either way; --json also prints the summary as JSON with -o."""
    from distkernel.build.config.probe import probe as take

    doc: dict[str, Any] = take(root)
    text = json.dumps(doc, indent=1) + "\n"
    if not output:
        click.echo(text, nl=False)
        return
    cache.atomic_write_text(output, text)
    summary = {
        "output": str(output),
        "loaded_modules": len(doc["loaded_modules"]),
        "modaliases": len(doc["modaliases"]),
    }
    if as_json:
        render.emit_json(summary)
    else:
        render.err.print(
            f"{output}: {summary['loaded_modules']} loaded modules, {summary['modaliases']} device aliases",
            markup=False,
        )


COMMANDS = (config, probe)
