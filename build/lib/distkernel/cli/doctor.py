"""doctor: which tools are present, and the command that installs the rest."""

from __future__ import annotations

import click

from distkernel.cli import options, render
from distkernel.core.tools import install_command, known_tools


@click.command()
@options.JSON
def doctor(as_json: bool) -> None:
    """List each tool distkernel needs, found or not, and how to install what is missing."""
    tools = known_tools()
    status = [(t, t.location()) for t in tools]
    missing = [t for t, where in status if where is None]
    fix = install_command([t.package for t in missing]) if missing else None
    if as_json:
        render.emit_json(
            {
                "tools": [
                    {"name": t.name, "found": where, "package": t.package, "for": t.purpose, "required": t.required}
                    for t, where in status
                ],
                "missing_required": [t.name for t in missing if t.required],
                "install": fix,
            }
        )
    else:
        rows = [
            (
                t.name,
                "ok" if where else ("MISSING" if t.required else "missing (optional)"),
                where or t.package,
                t.purpose,
            )
            for t, where in status
        ]
        render.table(None, ("tool", "status", "found at / package", "for"), rows)
        if fix:
            render.out.print(f"\nto install what is missing: {fix}")
        else:
            render.out.print("\nall tools present")
    if any(t.required for t in missing):
        raise SystemExit(3)


COMMANDS = (doctor,)
