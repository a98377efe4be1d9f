"""Running a matrix: the cells to redo run side by side (each its own process), on one
make jobserver holding the matrix's cores, so builds share the cores and boot tests
overlap builds; then the passing packages are published and old ones pruned; the
state of every cell is kept for the next run, which redoes only new, changed or
failed cells."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distkernel.core import cache
from distkernel.core.tools import call
from distkernel.target.extmod.jobserver import JobServer, default_cores
from distkernel.workflows.matrix.cell import RESULT
from distkernel.workflows.matrix.plan import STATE, Cell, Matrix, cells, read_state, to_redo
from distkernel.workflows.matrix.publish import prune, publish


@dataclass(frozen=True)
class Planned:
    cell: Cell
    reason: str  # why it runs; "" = its last result stands


@dataclass(frozen=True)
class MatrixRun:
    matrix: Matrix
    folder: Path  # this run's report folder
    cells: tuple[dict[str, Any], ...]  # one result per cell
    published: tuple[str, ...]
    pruned: tuple[str, ...]
    seconds: float
    workers: int

    @property
    def passed(self) -> bool:
        return all(c["status"] == "passed" for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {
            "matrix": str(self.matrix.path),
            "report": str(self.folder),
            "cells": list(self.cells),
            "published": list(self.published),
            "pruned": list(self.pruned),
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
            "passed": self.passed,
        }


def plan(matrix: Matrix, only: tuple[str, ...], report_dir: Path) -> list[Planned]:
    state = read_state(report_dir)
    return [Planned(c, to_redo(c, state)) for c in cells(matrix, only)]


def _run_one(cell: Cell, matrix: Matrix, folder: Path, js: JobServer) -> dict[str, Any]:
    out = folder / "cells" / cell.name
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps(cell.spec(matrix, out), indent=1) + "\n")
    env = {**os.environ, "MAKEFLAGS": js.makeflags()}
    log = out / "cell.log"
    start = time.monotonic()
    with open(log, "w") as f:
        done = call(
            [sys.executable, "-m", "distkernel.workflows.matrix.cell", spec],
            ok=None,
            env=env,
            stdout=f,
            pass_fds=(js.read_fd, js.write_fd),
        )
    try:
        doc: dict[str, Any] = json.loads((out / RESULT).read_text())
    except (OSError, ValueError):
        doc = {
            "name": cell.name,
            "arch": cell.arch,
            "status": "error",
            "failure": "crash",
            "detail": f"the cell's process ended with {done.code} and no result; see its log",
        }
    doc.update(log=str(log), seconds=round(time.monotonic() - start, 2), key=cell.key, ran=True)
    return doc


def _config_changes(doc: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any] | None:
    """The config's changes since the cell's last passing release (None: nothing to compare)."""
    from distkernel.build.config.upgrade import diff_files

    if not last or not last.get("config") or not doc.get("config"):
        return None
    old, new = Path(last["config"]), Path(doc["config"])
    if not old.is_file() or not new.is_file():
        return None
    d = diff_files(old, new)
    items = [f"+{k}={v}" for k, v in d.added.items()] + [f"-{k}" for k in d.removed]
    items += [f"{k}: {a} -> {b}" for k, (a, b) in d.changed.items()]
    return {
        "since": last.get("release"),
        "added": len(d.added),
        "removed": len(d.removed),
        "changed": len(d.changed),
        "items": items[:200],
    }


def run_matrix(matrix: Matrix, only: tuple[str, ...], report_dir: Path) -> MatrixRun:
    start = time.monotonic()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = report_dir / "runs" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    state = read_state(report_dir)
    planned = plan(matrix, only, report_dir)
    todo = [p.cell for p in planned if p.reason]
    cores = matrix.jobs or default_cores()
    workers = max(1, min(cores, len(todo)))
    # Each make holds one implicit job slot: the pipe gets the rest of the cores.
    js = JobServer(max(1, cores - workers + 1))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            fresh = dict(
                zip([c.name for c in todo], pool.map(lambda c: _run_one(c, matrix, folder, js), todo), strict=True)
            )
    finally:
        js.close()
    results = []
    for p in planned:
        if p.cell.name in fresh:
            doc = fresh[p.cell.name]
            doc["reason"] = p.reason
            doc["config_changes"] = _config_changes(doc, state.get(p.cell.name, {}).get("last_passed"))
        else:
            doc = {**state[p.cell.name]["result"], "ran": False, "reason": "unchanged, passed last time"}
        results.append(doc)
    published: list[str] = []
    pruned: list[str] = []
    if matrix.binhost is not None and matrix.key is not None:
        passing = [Path(d["package"]) for d in results if d.get("ran") and d["status"] == "passed"]
        published = publish(matrix.binhost, matrix.key, passing, folder / "publish")
        shutil.rmtree(folder / "publish", ignore_errors=True)
        newest_passing = {
            f"packages/{Path(d['package']).name}" for d in results if d["status"] == "passed" and d.get("package")
        }
        pruned = prune(matrix.binhost, matrix.key, matrix.keep, newest_passing)
    for d in results:
        if d.get("ran"):
            entry: dict[str, Any] = {"key": d["key"], "status": d["status"], "result": d}
            prior = state.get(d["name"], {}).get("last_passed")
            entry["last_passed"] = _keep_config(d, folder) if d["status"] == "passed" else prior
            state[d["name"]] = entry
    cache.atomic_write_text(report_dir / STATE, json.dumps(state, indent=1) + "\n")
    return MatrixRun(matrix, folder, tuple(results), tuple(published), tuple(pruned), time.monotonic() - start, workers)


def _keep_config(doc: dict[str, Any], folder: Path) -> dict[str, Any]:
    return {
        "release": doc.get("release"),
        "version": doc.get("version"),
        "config": doc.get("config"),
        "run": str(folder),
    }
