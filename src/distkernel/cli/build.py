"""build: a recipe into one package file."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import click

from distkernel.build.compile.distribute import parse_hosts
from distkernel.cli import options, render
from distkernel.cli.config import show_report, with_overrides
from distkernel.workflows.pipeline import build_package

RECIPE = options.RECIPE


def default_recipe() -> Path:
    return Path(str(resources.files("distkernel.build.data").joinpath("recipes/qemu-minimal.toml")))


@click.command()
@click.argument("recipe", type=RECIPE)
@options.OUT_DIR
@options.JOBS
@options.SET
@click.option("--fresh", is_flag=True, help="Ignore the package cache and build in an emptied build dir of its own.")
@click.option(
    "--distcc",
    "distcc",
    metavar="HOSTS",
    default=None,
    help="Compile on these distcc hosts ('HOST[:PORT][/LIMIT] ...'), over the recipe's and $DISTCC_HOSTS.",
)
@options.STRICT
@options.JSON
def build(
    recipe: Path,
    out: Path,
    jobs: int,
    overrides: tuple[str, ...],
    fresh: bool,
    distcc: str | None,
    strict: bool | None,
    as_json: bool,
) -> None:
    """Build RECIPE into one package file in --out (from the cache when nothing changed)."""
    r = with_overrides(recipe, overrides)
    if distcc is not None:  # where objects compile: the package key stays the same
        hosts = parse_hosts(distcc, "--distcc")
        r = dataclasses.replace(r, build=dataclasses.replace(r.build, distribute="distcc", hosts=hosts))
    distributed = None
    with render.progress() as p:
        result = build_package(r, out, jobs=jobs, fresh=fresh, strict=strict, progress=p)
    if result.build and result.build.distributed:
        distributed = result.build.distributed
    if as_json:
        render.emit_json(
            {
                "package": str(result.package),
                "cached": result.cached,
                "key": result.key,
                "seconds": round(result.seconds, 2),
                "timings": result.timings,
                "log": str(result.build.log) if result.build else None,  # kept, --fresh too
                "metadata": result.metadata.to_json(),
                "config": result.report.to_json() if result.report else None,
                "distributed": distributed.to_json() if distributed else None,
            }
        )
        return
    if result.report and result.report.misses:
        show_report(result.report, only_misses=True)
    how = (
        "from cache, make not run" if result.cached else f"built, {result.build.objects if result.build else 0} objects"
    )
    size = render.human_size(result.package.stat().st_size)
    render.out.print(f"{result.package} ({size}; {how}; {result.seconds:.1f} s)", markup=False)
    for line in distributed.lines() if distributed else []:
        render.out.print(line, markup=False)


COMMANDS = (build,)
