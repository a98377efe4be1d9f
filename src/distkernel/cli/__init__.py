"""The command line: parse, call a stage, render. Errors become one line and an exit
code (2 bad input, 3 tool, 1 the thing built/tested failed), never a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from distkernel import __version__
from distkernel.cli.render import err
from distkernel.errors import DistkernelError


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DistkernelError as e:
            lines = e.lines()
            err.print(f"distkernel: error: {lines[0]}", markup=False)
            for line in lines[1:]:
                err.print(f"  {line}", markup=False)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            err.print("distkernel: interrupted")
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="distkernel")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    envvar="DISTKERNEL_CACHE",
    help="Where sources, builds, ccache and finished packages are cached [default: $XDG_CACHE_HOME/distkernel].",
)
def main(cache_dir: Path | None) -> None:
    """Linux kernels handled like packages: a recipe becomes a tested binary package,
    installed on any boot layout."""
    if cache_dir:
        os.environ["DISTKERNEL_CACHE"] = str(cache_dir.resolve())


def _register() -> None:
    from distkernel.cli import boot, build, config, demo, doctor, install, modules, package, trust

    for module in (demo, build, config, doctor, package, install, boot, modules, trust):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
