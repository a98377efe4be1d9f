"""build: a recipe into one package file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from distkernel.build.recipe import load_recipe
from distkernel.cli import render
from distkernel.cli.config import show_report
from distkernel.workflows.pipeline import build_package

RECIPE = click.Path(exists=False, dir_okay=False, path_type=Path)
JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def default_recipe() -> Path:
    return Path(str(resources.files("distkernel.build.data").joinpath("recipes/qemu-minimal.toml")))


@click.command()
@click.argument("recipe", type=RECIPE)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for the package.",
)
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, help="make -j [default: one per core].")
@click.option("--fresh", is_flag=True, help="Ignore the package cache and build in a new, empty build dir.")
@click.option("--strict/--no-strict", default=None, help="Override the recipe's config.strict.")
@JSON
def build(recipe: Path, out: Path, jobs: int, fresh: bool, strict: bool | None, as_json: bool) -> None:
    """Build RECIPE into one package file in --out (from the cache when nothing changed)."""
    r = load_recipe(recipe)
    with render.progress() as p:
        result = build_package(r, out, jobs=jobs, fresh=fresh, strict=strict, progress=p)
    if as_json:
        render.emit_json(
            {
                "package": str(result.package),
                "cached": result.cached,
                "key": result.key,
                "seconds": round(result.seconds, 2),
                "timings": result.timings,
                "metadata": result.metadata.to_json(),
                "config": result.report.to_json() if result.report else None,
            }
        )
        return
    if result.report and result.report.misses:
        show_report(result.report, only_misses=True)
    how = (
        "from cache, make not run" if result.cached else f"built, {result.build.objects if result.build else 0} objects"
    )
    size = render.human_size(result.package.stat().st_size)
    render.out.print(f"{result.package} ({size}; {how}; {result.seconds:.1f} s)")


COMMANDS = (build,)
