"""config RECIPE | config upgrade | config diff, and probe: the config engine's commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from distkernel.build.config.report import ConfigEntry, ConfigReport
from distkernel.build.config.upgrade import ConfigDiff, diff_files, upgrade
from distkernel.build.recipe import load_recipe
from distkernel.build.source import source_key
from distkernel.cli import render
from distkernel.core import cache
from distkernel.workflows.pipeline import build_id, configure

RECIPE = click.Path(exists=False, dir_okay=False, path_type=Path)
CONFIG_FILE = click.Path(dir_okay=False, path_type=Path)
JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _status(e: ConfigEntry) -> str:
    return "took" if e.took else ("optional" if e.optional else "NOT TAKEN")


def show_report(report: ConfigReport, only_misses: bool = False) -> None:
    rows = [
        (e.symbol, e.requested, e.effective, _status(e), e.origin, e.reason or e.optional or e.overridden())
        for e in report.entries
        if not (only_misses and e.took)
    ]
    if rows:
        render.table(None, ("option", "requested", "effective", "", "from", "why / overrides"), rows)
    for note in report.notes:
        render.out.print(f"note: {note}", markup=False)
    if report.new_options:
        shown = ", ".join(f"{s}={v}" for s, v in report.new_options[:12])
        more = f" and {len(report.new_options) - 12} more (--json lists all)" if len(report.new_options) > 12 else ""
        render.out.print(f"new since the savedconfig, defaults chosen: {shown}{more}", markup=False)
    took = len(report.entries) - len(report.misses) - len(report.skipped)
    extra = f", {len(report.skipped)} optional did not" if report.skipped else ""
    extra += f", {len(report.conflicts)} set by two inputs (later wins)" if report.conflicts else ""
    render.out.print(f"{took}/{len(report.entries)} requested values took{extra} ({report.base})", markup=False)


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
    distkernel config RECIPE [--out DIR] [--root DIR] [--strict] [--json]
    distkernel config upgrade OLDCONFIG --source debian:linux-source-6.1 [--out FILE] [--json]
    distkernel config diff A B [--json]
    """


@config.command("recipe")
@click.argument("recipe", type=RECIPE)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write the .config here.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help='Target root for config.d and base = "running" [default: the recipe\'s config.root, else /].',
)
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Fail when a requested value did not take or two inputs disagree [default: the recipe's config.strict].",
)
@JSON
def config_recipe(recipe: Path, out: Path | None, root: Path | None, strict: bool | None, as_json: bool) -> None:
    """Assemble and resolve the recipe's .config, and report every requested value."""
    r = load_recipe(recipe)
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
        show_report(resolved.report)


def _diff_rows(d: ConfigDiff, why: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    why = why or {}
    rows: list[tuple[str, ...]] = [(k, "-", v, "new", "") for k, v in d.added.items()]
    rows += [(k, v, "-", "removed", why.get(k, "")) for k, v in d.removed.items()]
    rows += [(k, a, b, "changed", why.get(k, "")) for k, (a, b) in d.changed.items()]
    return rows


@config.command("upgrade")
@click.argument("oldconfig", type=CONFIG_FILE)
@click.option("--source", default="debian:linux-source-6.1", show_default=True, help="debian:NAME or dir:PATH.")
@click.option("--arch", default="x86_64", show_default=True)
@click.option("--out", type=CONFIG_FILE, help="Write the upgraded config here.")
@click.option("--derived", is_flag=True, help="Also list the new symbols without a prompt (--json always does).")
@JSON
def config_upgrade(oldconfig: Path, source: str, arch: str, out: Path | None, derived: bool, as_json: bool) -> None:
    """Bring OLDCONFIG to another kernel with olddefconfig: the new questions and the
    values chosen, options removed, values changed (with why)."""
    with render.progress():
        result = upgrade(oldconfig, source, arch)
    if out:
        cache.atomic_copy(result.config, out)
    if as_json:
        render.emit_json(result.to_json())
        return
    render.table(None, ("option", "old", "new", "", "why"), result.rows(derived))
    render.out.print(
        f"{oldconfig} -> {result.version}: {result.summary(derived)}; config: {out or result.config}", markup=False
    )


@config.command("diff")
@click.argument("a", type=CONFIG_FILE)
@click.argument("b", type=CONFIG_FILE)
@JSON
def config_diff(a: Path, b: Path, as_json: bool) -> None:
    """Options that differ between configs A and B (plain, .gz or .xz)."""
    d = diff_files(a, b)
    if as_json:
        render.emit_json(d.to_json())
        return
    render.table(None, ("option", str(a), str(b), ""), [r[:4] for r in _diff_rows(d)])
    render.out.print(f"{len(d.added)} only in B, {len(d.removed)} only in A, {len(d.changed)} changed", markup=False)


@click.command()
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/"))
@click.option("-o", "--output", type=CONFIG_FILE, help="Write host.json here [default: stdout].")
def probe(root: Path, output: Path | None) -> None:
    """Record what this host needs from a kernel (for a recipe's `tailor = "host.json"`)."""
    from distkernel.build.config.probe import probe as take

    doc: dict[str, Any] = take(root)
    text = json.dumps(doc, indent=1) + "\n"
    if output:
        cache.atomic_write_text(output, text)
        render.err.print(
            f"{output}: {len(doc['loaded_modules'])} loaded modules, {len(doc['modaliases'])} device aliases",
            markup=False,
        )
    else:
        click.echo(text, nl=False)


COMMANDS = (config, probe)
