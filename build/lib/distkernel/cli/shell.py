"""completion and man: shell completion (bash, zsh, fish) and a man page, both generated
from the click definitions, so they cannot drift from the commands. The package also
ships them generated (cli/data: share/man/man1 and the shells' completion folders on
install); `distkernel man --write-data` refreshes those files and a test keeps them equal."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import get_completion_class

from distkernel import __version__
from distkernel.cli import options, render

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_DISTKERNEL_COMPLETE"
# The file each shell reads from its completion folder, under cli/data/completions.
SHELL_FILES = {"bash": "distkernel", "zsh": "_distkernel", "fish": "distkernel.fish"}


def completion_script(shell: str) -> str:
    from distkernel.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None
    return cls(cli, {}, "distkernel", COMPLETE_VAR).source()


def _roff(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join(("\\&" + line if line.startswith((".", "'")) else line) for line in escaped.splitlines())


def _paragraphs(text: str) -> str:
    blocks = [" ".join(line.strip() for line in b.splitlines() if line.strip() != "\b") for b in text.split("\n\n")]
    return "\n.PP\n".join(_roff(b) for b in blocks if b.strip())


ENVIRONMENT = {
    "DISTKERNEL_CONFIG": "A settings file to read instead of /etc/distkernel/distkernel.toml.",
    "DISTKERNEL_CACHE": "The cache folder (sources, builds, ccache, packages); --cache-dir wins.",
    "NO_COLOR": "Print no colour (output that is not a terminal never has colour).",
}


def man_page() -> str:
    from distkernel.cli import cli, command_tree

    tree = command_tree()
    ctx = click.Context(cli, info_name="distkernel", **cli.context_settings)
    out = [
        f'.TH DISTKERNEL 1 "" "distkernel {__version__}" "User Commands"',
        ".SH NAME",
        "distkernel \\- Linux kernels handled like packages",
        ".SH SYNOPSIS",
        ".B distkernel",
        "[\\-\\-cache\\-dir DIR] COMMAND [OPTIONS] [ARGS]",
        ".SH DESCRIPTION",
        _paragraphs(cli.help or ""),
        ".SH COMMANDS",
    ]
    for name, cmd in tree.items():
        if not name or (isinstance(cmd, click.Group) and name != "config"):
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        out += [f'.SS "distkernel {_roff(name)}"', f".B distkernel {_roff(name)}"]
        out.append(_roff(" ".join(cmd.collect_usage_pieces(sub))))
        out += [".PP", _paragraphs(cmd.help or "")]
        for param in cmd.get_params(sub):
            if isinstance(param, click.Argument):
                continue
            record = param.get_help_record(sub)
            if record is None:
                continue
            out += [".TP", f".B {_roff(record[0])}", _roff(" ".join(record[1].split()))]
    out += [".SH FILES", ".TP", ".B /etc/distkernel/distkernel.toml"]
    out.append("Defaults: binhost, layout, initramfs, keep, cache_dir. An option on the command line wins.")
    out += [".SH ENVIRONMENT"]
    for var, text in ENVIRONMENT.items():
        out += [".TP", f".B {var}", _roff(text)]
    out += [
        ".SH EXIT STATUS",
        "0 ok; 1 the thing built or tested failed; 2 bad input (one line naming the file or option and the fix);",
        "3 a tool is missing or failed (its log path).",
    ]
    return "\n".join(out) + "\n"


def data_dir() -> Path:
    return Path(__file__).parent / "data"


def generated_files() -> dict[Path, str]:
    """What cli/data holds, freshly generated."""
    files = {data_dir() / "distkernel.1": man_page()}
    for shell, name in SHELL_FILES.items():
        files[data_dir() / "completions" / name] = completion_script(shell)
    return files


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@options.JSON
def completion(shell: str, as_json: bool) -> None:
    """Print the completion script for SHELL. For example:

    \b
    bash: distkernel completion bash > ~/.local/share/bash-completion/completions/distkernel
    zsh:  distkernel completion zsh > "${fpath[1]}/_distkernel"
    fish: distkernel completion fish > ~/.config/fish/completions/distkernel.fish
    """
    script = completion_script(shell)
    if as_json:
        render.emit_json({"shell": shell, "script": script})
    else:
        click.echo(script, nl=False)


@click.command("man")
@click.option("--write-data", is_flag=True, hidden=True, help="Regenerate the man page and completions in cli/data.")
@options.JSON
def man(write_data: bool, as_json: bool) -> None:
    """Print the man page (roff): `distkernel man | man -l -`."""
    if write_data:
        for path, text in generated_files().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            render.out.print(str(path), markup=False)
        return
    page = man_page()
    if as_json:
        render.emit_json({"man": page})
    else:
        click.echo(page, nl=False)


COMMANDS: list[click.Command] = [completion, man]
