"""The command line: parse, call a stage, render. Errors become one line and an exit
code (2 bad input, 3 tool, 1 the thing built/tested failed), never a traceback."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from distkernel import __version__
from distkernel.cli.render import err
from distkernel.core.errors import DistkernelError

# Which module holds each command: a command's module (and the stages it pulls in) is
# imported only when that command runs, so `distkernel install` does not pay for qemu,
# Kconfig or the compiler stages at start-up.
COMMAND_MODULES = {
    "demo": "demo",
    "build": "build",
    "config": "config",
    "probe": "config",
    "doctor": "doctor",
    "inspect": "package",
    "verify": "package",
    "install": "install",
    "list": "install",
    "remove": "install",
    "rollback": "install",
    "mark-good": "install",
    "recover": "install",
    "test": "boot",
    "modules": "modules",
    "key": "key",
    "sign": "key",
    "repo": "repo",
    "fetch": "repo",
}


class Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands: list[click.Command] = importlib.import_module(f"distkernel.cli.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)

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
