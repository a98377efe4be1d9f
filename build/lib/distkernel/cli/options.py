"""The options several commands share, defined once: one name, one type, one help text.

A command applies them as decorators (`@options.ROOT`, `@options.JSON`); defaults from
/etc/distkernel/distkernel.toml arrive through click's default_map (cli/__init__.py),
so an option given on the command line always wins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from distkernel.target.install.layouts import LAYOUTS

F = TypeVar("F", bound=Callable[..., Any])

INITRAMFS_BACKENDS = ("builtin", "dracut", "none")


class RootPath(click.ParamType):  # type: ignore[type-arg]
    """An existing folder: every command says the same thing about a --root that is not
    one, before it reads or writes anything there."""

    name = "DIR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(value)
        if not path.is_dir():
            what = "not a directory" if path.exists() else "not a directory (it does not exist)"
            self.fail(f"{path}: {what}; create it, or pass the root of the system to work on", param, ctx)
        return path


def _root_help(default: str) -> str:
    return f"The root of the system to work on (a sandbox, a mounted image) [default: {default}]."


def root(default: Path | None = Path("/"), help: str | None = None) -> Callable[[F], F]:
    """--root DIR; DIR must exist. `default=None` for commands where no root means "none"."""
    return click.option(
        "--root",
        type=RootPath(),
        default=default,
        help=help or _root_help(str(default) if default else "none"),
    )


ROOT = root()

JSON = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print the result as JSON on stdout; errors too, as {"error": ...}.',
)


def layout(
    help: str = "Boot layout [default: distkernel.toml layout, else install.conf layout=, else detected].",
) -> Callable[[F], F]:
    """--layout NAME, one of the layouts install knows (`test` says its own default)."""
    return click.option("--layout", type=click.Choice(LAYOUTS), help=help)


LAYOUT = layout()

INITRAMFS = click.option(
    "--initramfs",
    type=click.Choice(INITRAMFS_BACKENDS),
    help="Initramfs backend [default: distkernel.toml initramfs, else install.conf initrd_generator=, else builtin].",
)

JOBS = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=0,
    help="Parallel jobs (make -j, module builds) [default: 0, one per core].",
)

KEEP = click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=3,
    help="Kernels of ours to keep in the root [default: distkernel.toml keep, else 3].",
)

DRY_RUN = click.option("--dry-run", is_flag=True, help="Print what would be placed or removed; change nothing.")

OUT_DIR = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder the package is written to.",
)

RECIPE = click.Path(dir_okay=False, path_type=Path)
PACKAGE = click.Path(exists=True, dir_okay=False, path_type=Path)

CACHE_DIR = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="DISTKERNEL_CACHE",
    help="Where sources, builds, ccache and finished packages are cached "
    "[default: $DISTKERNEL_CACHE, else $XDG_CACHE_HOME/distkernel].",
)

STRICT = click.option(
    "--strict/--no-strict",
    default=None,
    help="Fail when a requested value did not take or two inputs disagree [default: the recipe's config.strict].",
)

SET = click.option(
    "--set",
    "overrides",
    metavar="CONFIG_X=VALUE",
    multiple=True,
    help="Set a config option for this run only (repeatable); applied after every recipe input.",
)
