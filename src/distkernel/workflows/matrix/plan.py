"""The matrix file (a small, closed TOML schema) and the plan: which cells there are,
the inputs key of each, and which a run must redo (new inputs, or failed last time)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distkernel.build.recipe import load_recipe
from distkernel.build.recipe_model import Recipe
from distkernel.core import cache
from distkernel.core.arch import known_arches
from distkernel.core.errors import DistkernelError, UserError

STATE = "state.json"  # in the report folder: each cell's last inputs key and status
KNOWN = {
    "recipes": list,  # recipe files, relative to the matrix file
    "arches": list,  # the arch axis: every recipe is built for each
    "exclude": list,  # cell names left out (a recipe that makes no sense on an arch)
    "binhost": str,  # repo folder packages are published to (made when missing)
    "key": str,  # Ed25519 key: signs the packages and the binhost's index
    "keep": int,  # packages kept per name/arch/variant (the newest passing one always)
    "retries": int,  # extra boot attempts after a flaky outcome (panic, timeout)
    "firmware": str,
    "timeout": int,  # seconds per boot attempt
    "jobs": int,  # cores for the whole matrix (one make jobserver); 0: all
}


@dataclass(frozen=True)
class Matrix:
    path: Path
    recipes: tuple[Path, ...]
    arches: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    binhost: Path | None = None
    key: Path | None = None
    keep: int = 3
    retries: int = 1
    firmware: str = "bios"
    timeout: int = 300
    jobs: int = 0


@dataclass(frozen=True)
class Cell:
    name: str  # <recipe name>-<arch>
    recipe: Recipe  # with the cell's arch
    arch: str
    key: str  # inputs key: the recipe's package inputs and the boot settings

    def spec(self, matrix: Matrix, folder: Path) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipe": str(self.recipe.path),
            "arch": self.arch,
            "out": str(folder),
            "firmware": matrix.firmware,
            "timeout": matrix.timeout,
            "retries": matrix.retries,
        }


def _fail(path: Path, message: str) -> UserError:
    return UserError(f"{path}: {message}")


def read_matrix(path: Path) -> Matrix:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise _fail(path, f"cannot read the matrix file ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _fail(path, f"not valid TOML: {e}") from None
    doc = raw.get("matrix")
    if not isinstance(doc, dict) or set(raw) != {"matrix"}:
        raise _fail(path, "needs exactly one table, [matrix] (recipes, arches, binhost, key, keep, retries)")
    for k, v in doc.items():
        if k not in KNOWN:
            raise _fail(path, f"matrix.{k}: unknown key (known: {', '.join(KNOWN)})")
        if type(v) is not KNOWN[k] or (isinstance(v, list) and not all(isinstance(x, str) for x in v)):
            raise _fail(
                path, f"matrix.{k}: must be a {KNOWN[k].__name__}" + (" of strings" if KNOWN[k] is list else "")
            )
    folder = path.resolve().parent
    recipes = tuple((folder / r).resolve() for r in doc.get("recipes", []))
    if not recipes:
        raise _fail(path, "matrix.recipes: list at least one recipe file")
    arches = tuple(doc.get("arches", ["x86_64"]))
    for a in arches:
        if a not in known_arches():
            raise _fail(path, f"matrix.arches: unknown arch `{a}` (known: {', '.join(known_arches())})")
    for k in ("keep", "retries", "timeout", "jobs"):
        if k in doc and doc[k] < (1 if k in ("keep", "timeout") else 0):
            raise _fail(path, f"matrix.{k}: {doc[k]} is too small")
    binhost = (folder / doc["binhost"]).resolve() if "binhost" in doc else None
    key = (folder / doc["key"]).resolve() if "key" in doc else None
    if (binhost is None) != (key is None):
        raise _fail(path, "matrix.binhost and matrix.key go together: set both (to publish) or neither")
    if key is not None and not key.is_file():
        raise _fail(path, f"matrix.key: file not found: {key}")
    return Matrix(
        path.resolve(),
        recipes,
        arches,
        tuple(doc.get("exclude", [])),
        binhost,
        key,
        doc.get("keep", 3),
        doc.get("retries", 1),
        doc.get("firmware", "bios"),
        doc.get("timeout", 300),
        doc.get("jobs", 0),
    )


def cells(matrix: Matrix, only: tuple[str, ...] = ()) -> list[Cell]:
    from distkernel.workflows.pipeline import inputs_key

    found = []
    for path in matrix.recipes:
        base = load_recipe(path)
        for arch in matrix.arches:
            name = f"{base.kernel.name}-{arch}"
            if name in matrix.exclude or (only and name not in only):
                continue
            recipe = replace(base, kernel=replace(base.kernel, arch=arch))
            try:
                inputs, _ = inputs_key(recipe)
            except DistkernelError:
                inputs = "unresolved"  # an input this host cannot read yet (a source not fetched): the cell says so
            boot = f"{matrix.firmware}/{matrix.timeout}/{matrix.retries}"
            found.append(Cell(name, recipe, arch, cache.sha256_bytes(f"{inputs}\n{arch}\n{boot}".encode())))
    if only:
        unknown = sorted(set(only) - {c.name for c in found})
        if unknown:
            names = ", ".join(c.name for c in cells(matrix)) if found or only else ""
            raise UserError(f"--only {unknown[0]}: no such cell in {matrix.path} (cells: {names})")
    return found


def read_state(report_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads((report_dir / STATE).read_text())
        return {k: v for k, v in doc.items() if isinstance(v, dict)} if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def to_redo(cell: Cell, state: dict[str, dict[str, Any]]) -> str:
    """Why the cell runs ("" when its last result stands)."""
    last = state.get(cell.name)
    if last is None:
        return "new"
    if last.get("key") != cell.key:
        return "inputs changed"
    if last.get("status") != "passed":
        return f"failed last time ({last.get('status')})"
    return ""
