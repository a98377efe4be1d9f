"""The command line: parse, call a stage, render. Every command keeps one contract:
errors are one line `distkernel: error: ...` naming the file/option and the fix (click's
own parser errors included), with an exit code (2 bad input, 3 tool, 1 the thing
built/tested failed), never a traceback; with --json the error is also a JSON document
on stdout."""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from distkernel import __version__
from distkernel.cli import options
from distkernel.cli.render import emit_json, emitted, err
from distkernel.core.errors import DistkernelError

# Which module holds each command: a command's module (and the stages it pulls in) is
# imported only when that command runs, so `distkernel install` does not pay for qemu,
# Kconfig or the compiler stages at start-up.
COMMAND_MODULES = {
    "demo": "demo",
    "build": "build",
    "config": "config",
    "probe": "config",
    "recipe": "recipe",
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
    "completion": "shell",
    "man": "shell",
}


def ensure_json(cmd: click.Command) -> click.Command:
    """Every command takes --json (at least for its errors, which main() prints as JSON)."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            ensure_json(sub)
    elif not any("--json" in getattr(p, "opts", ()) for p in cmd.params):
        cmd.params.append(
            click.Option(["--json"], is_flag=True, expose_value=False, help="Print errors as JSON on stdout.")
        )
    return cmd


class Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands: list[click.Command] = importlib.import_module(f"distkernel.cli.{module}").COMMANDS
        return ensure_json(next(c for c in commands if c.name == cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMAND_MODULES:
            close = difflib.get_close_matches(name, list(COMMAND_MODULES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            ctx.fail(f"no such command {name!r}{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="distkernel")
@options.CACHE_DIR
@click.pass_context
def cli(ctx: click.Context, cache_dir: Path | None) -> None:
    """Linux kernels handled like packages: a recipe becomes a tested binary package,
    installed on any boot layout.

    Defaults for options come from /etc/distkernel/distkernel.toml (or the file
    $DISTKERNEL_CONFIG names); an option on the command line wins."""
    from distkernel.core.settings import load_settings
    from distkernel.target.install.layouts import LAYOUTS

    settings = load_settings({"layout": tuple(LAYOUTS), "initramfs": options.INITRAMFS_BACKENDS})
    ctx.default_map = settings.defaults()
    chosen = cache_dir or (Path(settings.cache_dir) if settings.cache_dir else None)
    if chosen:
        os.environ["DISTKERNEL_CACHE"] = str(chosen.resolve())


def _param_name(e: click.BadParameter) -> str:
    p = e.param
    if p is None:
        return e.param_hint if isinstance(e.param_hint, str) else "value"
    if isinstance(p, click.Option):
        return max(p.opts, key=len)
    return (p.human_readable_name or p.name or "value").upper()


def usage_message(e: click.ClickException) -> str:
    """click's parser errors in the one-line form: what is wrong, then the fix (the
    usage line, or where to read about the value)."""
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx else "distkernel"
    where = path.removeprefix("distkernel").strip()
    if isinstance(e, click.BadParameter) and not isinstance(e, click.MissingParameter):
        name = _param_name(e)
        sep = " " if isinstance(e.param, click.Option) and isinstance(e.param.type, options.RootPath) else ": "
        what = f"{name}{sep}{e.message}"
        fix = f"see `{path} --help`"
    else:
        what = e.format_message()
        pieces = " ".join(ctx.command.collect_usage_pieces(ctx)) if ctx is not None else "COMMAND"
        fix = f"usage: {path} {pieces}"
    what = " ".join(what.split())
    what = re.sub(r"\.? ?Did you mean (.*)\?$", r" (did you mean \1?)", what)
    if what[1:2].islower():
        what = what[0].lower() + what[1:]
    return f"{where + ': ' if where else ''}{what.rstrip('.')}; {fix}"


def _fail(code: int, first: str, rest: list[str], as_json: bool, log: str | None = None) -> NoReturn:
    err.print(f"distkernel: error: {first}", markup=False, highlight=False)
    for line in rest:
        err.print(f"  {line}", markup=False, highlight=False)
    if as_json and not emitted.json:
        kind = {1: "failed", 2: "bad input", 3: "tool"}.get(code, "error")
        emit_json({"error": {"exit_code": code, "kind": kind, "message": first, "details": rest, "log": log}})
    sys.exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in (args[: args.index("--")] if "--" in args else args)
    try:
        cli.main(args, prog_name="distkernel", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        _fail(2, usage_message(e), [], as_json)
    except DistkernelError as e:
        lines = e.lines()
        log = str(e.log) if e.log is not None else None
        _fail(e.exit_code, lines[0], lines[1:], as_json, log)
    except (KeyboardInterrupt, click.Abort):
        err.print("distkernel: interrupted")
        sys.exit(130)
    sys.exit(0)


def command_tree() -> dict[str, click.Command]:
    """Every command by its full name (`config upgrade`), loaded: for the man page,
    completion and the tests that hold every command to the contract."""
    found: dict[str, click.Command] = {}
    ctx = click.Context(cli, info_name="distkernel", **cli.context_settings)

    def walk(prefix: str, cmd: click.Command) -> None:
        found[prefix] = cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(f"{prefix} {name}".strip(), sub)

    walk("", cli)
    return found


__all__: list[Any] = ["cli", "command_tree", "main"]
