"""recipe list | recipe new: the recipes shipped inside the package (build/data/recipes),
usable after `pip install distkernel` without a checkout."""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib import resources
from pathlib import Path

import click

from distkernel.build.recipe import load_recipe
from distkernel.cli import options, render
from distkernel.core.errors import UserError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def recipes_dir() -> Path:
    return Path(str(resources.files("distkernel.build.data").joinpath("recipes")))


def embedded() -> dict[str, Path]:
    return {p.stem: p for p in sorted(recipes_dir().glob("*.toml"))}


def summary(path: Path) -> str:
    """The first sentence of a recipe's opening comment, which says what it is for."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        words += line.lstrip("#").split()
    text = re.sub(r"^The default recipe: ", "", " ".join(words))
    return text.split(". ")[0].rstrip(".")


@click.group()
def recipe() -> None:
    """The recipes distkernel ships: list them, start a new one from one."""


@recipe.command("list")
@options.JSON
def recipe_list(as_json: bool) -> None:
    """The embedded recipes (their folder is printed too: `distkernel build` takes the path)."""
    found = embedded()
    if as_json:
        render.emit_json(
            {
                "folder": str(recipes_dir()),
                "recipes": [{"name": n, "path": str(p), "about": summary(p)} for n, p in found.items()],
            }
        )
        return
    render.table(None, ("recipe", "about"), [(n, summary(p)) for n, p in found.items()])
    render.field("folder", str(recipes_dir()))


@recipe.command("new")
@click.argument("name")
@click.option(
    "--from",
    "base",
    default="qemu-minimal",
    show_default=True,
    metavar="RECIPE",
    help="The embedded recipe to start from (see `distkernel recipe list`).",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where NAME.toml (and the fragments it uses) are written.",
)
@options.JSON
def recipe_new(name: str, base: str, folder: Path, as_json: bool) -> None:
    """Write NAME.toml, a copy of an embedded recipe with kernel.name = NAME, and the
    fragment files it names, into --dir; existing files are never overwritten."""
    if not NAME_RE.match(name):
        raise UserError(f"recipe new {name}: a name is letters, digits, `.`, `_` and `-`; e.g. my-kernel")
    found = embedded()
    if base not in found:
        raise UserError(f"--from {base}: no such embedded recipe; known: {', '.join(found)}")
    src = found[base]
    target = folder / f"{name}.toml"
    fragments = [Path(f) for f in tomllib.loads(src.read_text()).get("config", {}).get("fragments", [])]
    copies = [(src.parent / f, folder / f) for f in fragments]
    for dest in [target, *(d for _, d in copies)]:
        if dest.exists():
            raise UserError(f"{dest}: already exists; pick another NAME or --dir (nothing was written)")
    text = re.sub(r'(?m)^name = "[^"]*"', f'name = "{name}"', src.read_text(), count=1)
    folder.mkdir(parents=True, exist_ok=True)
    for s, d in copies:
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
    staged = target.with_name(f".{target.name}.new")
    staged.write_text(text)
    staged.rename(target)
    load_recipe(target)  # what was written reads back as a recipe
    if as_json:
        render.emit_json({"recipe": str(target), "from": base, "files": [str(d) for _, d in copies]})
        return
    render.out.print(f"{target}: new recipe from {base} (kernel.name = {name})", markup=False)
    for _, d in copies:
        render.out.print(f"  {d}", markup=False)
    render.out.print(f"next: distkernel config {target}", markup=False)


COMMANDS: list[click.Command] = [recipe]
