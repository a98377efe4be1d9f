"""matrix: recipes x arches built, boot-tested, published, pruned and reported."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.cli import render
from distkernel.core.errors import Failure


@click.command("matrix")
@click.argument("matrix_file", metavar="MATRIX.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--only", multiple=True, metavar="CELL", help="Only this cell (RECIPE_NAME-ARCH); repeatable.")
@click.option("--dry-run", is_flag=True, help="Print the plan: every cell and whether it runs; run nothing.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the reports and the cells' state [default: matrix-report beside MATRIX.toml].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def matrix(matrix_file: Path, only: tuple[str, ...], dry_run: bool, report_dir: Path | None, as_json: bool) -> None:
    """Build every recipe x arch cell of MATRIX.toml in isolation, boot-test it, publish
    the passing packages to the binhost, prune old ones, and write an HTML, JSON and
    JUnit report. A rerun redoes only cells whose inputs changed or that failed."""
    from distkernel.workflows.matrix.plan import read_matrix
    from distkernel.workflows.matrix.run import plan, run_matrix

    m = read_matrix(matrix_file)
    folder = (report_dir or m.path.parent / "matrix-report").resolve()
    if dry_run:
        planned = plan(m, only, folder)
        if as_json:
            render.emit_json(
                {
                    "cells": [
                        {
                            "cell": p.cell.name,
                            "arch": p.cell.arch,
                            "recipe": str(p.cell.recipe.path),
                            "runs": bool(p.reason),
                            "reason": p.reason or "unchanged, passed last time",
                        }
                        for p in planned
                    ]
                }
            )
            return
        plan_rows = [
            (p.cell.name, p.cell.arch, p.cell.recipe.path.name, p.reason or "skip: unchanged, passed") for p in planned
        ]
        render.table(None, ("cell", "arch", "recipe", "plan"), plan_rows)
        return
    from distkernel.workflows.matrix.report import write_report

    run = run_matrix(m, only, folder)
    page = write_report(run)
    if as_json:
        render.emit_json({**run.to_json(), "html": str(page)})
    else:
        rows = [
            (
                c["name"],
                c.get("version", "-"),
                c["status"] + (f" ({c['failure']})" if c.get("failure") else ""),
                f"{c.get('build_s', 0):.0f} s",
                f"{c.get('boot_s') or 0:.0f} s",
                render.human_size(c.get("size") or 0),
                "ran" if c.get("ran") else "kept",
            )
            for c in run.cells
        ]
        render.table(None, ("cell", "version", "status", "build", "boot", "size", "this run"), rows)
        render.out.print(f"report: {page}")
    if not run.passed:
        raise Failure(f"{sum(c['status'] != 'passed' for c in run.cells)} cell(s) failed; see {page}")


COMMANDS = [matrix]
