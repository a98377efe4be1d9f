"""The layers in src/distkernel: core -> build -> target -> workflows -> cli. A module may
import its own layer or one below it, never one above; and no two units (a module or
subpackage directly inside a layer) may import each other in a circle. Imports inside
functions and under TYPE_CHECKING count: they are dependencies all the same."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# `distkernel` itself (__init__: the version) is below everything; __main__ is the top.
LAYERS = {"distkernel": 0, "core": 1, "build": 2, "target": 3, "workflows": 4, "cli": 5, "__main__": 6}


def unit(module: str) -> str:
    """`distkernel.target.install.api` -> `target.install`; `distkernel.cli.x` -> `cli`."""
    parts = module.split(".")[1:]
    if not parts:
        return "distkernel"
    if parts[0] in ("core", "build", "target", "workflows") and len(parts) > 1:
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def layer(u: str) -> int:
    return LAYERS[u.split(".")[0]]


def imports(src: Path) -> dict[str, dict[str, str]]:
    """unit -> {imported unit: where (file:line) it is first imported}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for f in sorted((src / "distkernel").rglob("*.py")):
        module = ".".join(f.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (f.name == "__init__.py")]
                targets = [".".join([*base, node.module] if node.module else base)]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "distkernel" or unit(target) not in _known(src):
                    continue
                if unit(target) != unit(module):
                    graph[unit(module)].setdefault(unit(target), f"{f.relative_to(src)}:{node.lineno}")
    return graph


def _known(src: Path) -> set[str]:
    top = src / "distkernel"
    names = {"distkernel", "cli", "__main__"}
    for lay in ("core", "build", "target", "workflows"):
        names |= {f"{lay}.{p.stem}" for p in (top / lay).iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    return names


def problems(src: Path) -> list[str]:
    graph = imports(src)
    out = [
        f"{where}: {u} (layer {layer(u)}) imports {t} (layer {layer(t)}), a layer above it"
        for u, targets in graph.items()
        for t, where in targets.items()
        if layer(t) > layer(u)
    ]
    out += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return sorted(out)


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle per unit that can reach itself (depth-first search, good for ~40 units)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, {}):
            if nxt == start:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    found.append([*path, start])
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for u in sorted(graph):
        walk(u, u, [u])
    return found


def test_layers_and_no_cycles() -> None:
    assert problems(SRC) == []


def _fake_tree(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp / "distkernel" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for lay in ("core", "build", "target", "workflows", "cli"):
        (tmp / "distkernel" / lay).mkdir(parents=True, exist_ok=True)
        (tmp / "distkernel" / lay / "__init__.py").touch()
    return tmp


def test_an_upward_import_fails(tmp_path: Path) -> None:
    src = _fake_tree(
        tmp_path,
        {
            "core/errors.py": "def f():\n    from distkernel.target.install import api\n",
            "target/install/__init__.py": "",
        },
    )
    assert problems(src) == [
        "distkernel/core/errors.py:2: core.errors (layer 1) imports target.install (layer 3), a layer above it"
    ]


def test_a_cycle_within_a_layer_fails(tmp_path: Path) -> None:
    src = _fake_tree(
        tmp_path,
        {
            "target/a/__init__.py": "from distkernel.target.b import x\n",
            "target/b/__init__.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from distkernel.target import a\n"
            ),
        },
    )
    assert problems(src) == ["import cycle: target.a -> target.b -> target.a"]
