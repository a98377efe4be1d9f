"""bump: move pinned recipes to the newest version of their series."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.cli import render
from distkernel.workflows.bump import bump as run_bump


@click.command("bump")
@click.argument("recipes_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--series", multiple=True, metavar="S", help="Only recipes of this series (6.1, 6.12); repeatable.")
@click.option("--commit", is_flag=True, help="One git commit per series in the recipes' repository.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bump(recipes_dir: Path, series: tuple[str, ...], commit: bool, as_json: bool) -> None:
    """Pin every recipe in RECIPES_DIR to the newest version of its series (Debian's
    archive or the recipe's signed kernel.org-style feed), bring savedconfigs forward and
    write a changelog entry. Nothing new: nothing changes."""
    result = run_bump(recipes_dir, series, commit)
    if as_json:
        render.emit_json(result.to_json())
        return
    rows = [(b.recipe.name, b.series, b.old or "-", b.new, b.summary or "-") for b in result.bumped]
    rows += [(c.recipe.name, c.series or "-", c.version or "(not pinned)", "current", "-") for c in result.current]
    if rows:
        render.table(None, ("recipe", "series", "from", "to", "config"), rows)
    for b in result.bumped:
        for option, value, prompt in b.questions:
            render.out.print(f"  {b.recipe.name}: new question {option}={value}" + (f" ({prompt})" if prompt else ""))
    for sha in result.commits:
        render.out.print(f"committed {sha[:12]}")
    if not result.bumped:
        render.out.print("nothing new")


COMMANDS = [bump]
