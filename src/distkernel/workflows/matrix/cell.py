"""One matrix cell, run in its own process (`python -m distkernel.workflows.matrix.cell
SPEC.json`): build the recipe for the cell's arch (a client of the matrix's make
jobserver, through MAKEFLAGS), boot-test the package (retrying only the flaky
outcomes), and write result.json beside the spec. A cell's failure is data in its
result, never an exception of the matrix."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from distkernel.build.recipe import load_recipe
from distkernel.core.errors import DistkernelError, UserError

RESULT = "result.json"


def _write(out: Path, doc: dict[str, Any]) -> None:
    tmp = out / f".{RESULT}.part"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out / RESULT)


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    from distkernel.workflows.boottest.preflight import judge_package
    from distkernel.workflows.boottest.run import BootOptions, boot_test
    from distkernel.workflows.pipeline import build_package

    out = Path(spec["out"])
    doc: dict[str, Any] = {"name": spec["name"], "arch": spec["arch"], "status": "error", "failure": ""}
    start = time.monotonic()
    try:
        base = load_recipe(Path(spec["recipe"]))
        recipe = replace(base, kernel=replace(base.kernel, arch=spec["arch"]))
        built = build_package(recipe, out / "package")
    except DistkernelError as e:
        doc.update(status="build failed", failure=_failure_class(e), detail=e.message, build_s=time.monotonic() - start)
        doc["build_log"] = str(e.log) if e.log else None
        return doc
    meta = built.metadata
    doc.update(
        version=meta.version,
        release=meta.kernel_release,
        variant=meta.variant,
        package=str(built.package),
        size=built.package.stat().st_size,
        cached=built.cached,
        build_s=round(built.seconds, 2),
    )
    _, config = judge_package(built.package)
    (out / "config").write_text("".join(f"{k}={v}\n" for k, v in sorted(config.items())))
    doc["config"] = str(out / "config")
    if built.report is not None:
        (out / "config-report.json").write_text(json.dumps(built.report.to_json(), indent=1) + "\n")
        doc["config_report"] = str(out / "config-report.json")
    start = time.monotonic()
    try:
        opts = BootOptions(
            firmware=spec["firmware"],
            timeout=float(spec["timeout"]),
            retries=int(spec["retries"]),
            log_dir=out / "console",
            keep_logs=True,
        )
        result = boot_test(built.package, opts)
    except DistkernelError as e:
        doc.update(status="boot failed", failure="harness", detail=e.message, boot_s=round(time.monotonic() - start, 2))
        return doc
    final = result.final
    doc.update(
        boot_s=round(time.monotonic() - start, 2),
        attempts=[a.outcome for a in result.attempts],
        console_log=str(final.console_log) if final.console_log else None,
        status="passed" if result.passed else "boot failed",
        failure="" if result.passed else final.outcome,
        detail=final.detail,
    )
    return doc


def _failure_class(e: DistkernelError) -> str:
    return {1: "compile", 2: "input", 3: "tool"}.get(e.exit_code, "error")


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    out = Path(spec["out"])
    try:
        doc = run_cell(spec)
    except UserError as e:
        doc = {"name": spec["name"], "arch": spec["arch"], "status": "error", "failure": "input", "detail": e.message}
    _write(out, doc)
    shutil.rmtree(out / "package" / ".tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
