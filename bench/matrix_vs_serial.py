"""The matrix's wall time beside the same cells run one after another by hand (`distkernel
build` then `distkernel test`, per recipe), over the suite's two x86_64 recipes (the
default one and tests/data/recipes/rich.toml). Goal: matrix <= 0.8x the serial runs on
two cores. Each side starts from the same package cache: run it once to warm the cache,
or pass --fresh to make both sides build (minutes)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_RECIPE, DISTKERNEL, ROOT, ratio, report, sh
from tests.recipekeys import ensure_recipe_keys

RECIPES = (DEFAULT_RECIPE, ROOT / "tests" / "data" / "recipes" / "rich.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    ensure_recipe_keys()  # rich.toml signs (its [sign])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.monotonic()
        for recipe in RECIPES:
            built = json.loads(sh(*DISTKERNEL, "build", recipe, "--out", tmp / "serial", "--json"))
            sh(*DISTKERNEL, "test", built["package"], "--retries", "1")
        serial = time.monotonic() - start
        listed = ", ".join(f'"{r}"' for r in RECIPES)
        (tmp / "matrix.toml").write_text(f'[matrix]\nrecipes = [{listed}]\narches = ["x86_64"]\n')
        start = time.monotonic()
        sh(*DISTKERNEL, "matrix", tmp / "matrix.toml", "--report", tmp / "report")
        matrix = time.monotonic() - start
    report(
        "matrix_vs_serial",
        {
            "cells": len(RECIPES),
            "matrix_s": round(matrix, 1),
            "serial_s": round(serial, 1),
            "ratio": ratio(matrix, serial),
            "goal": 0.8,
            "met": ratio(matrix, serial) <= 0.8,
        },
    )


if __name__ == "__main__":
    main()
