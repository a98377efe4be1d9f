"""A matrix run's report: a static HTML page people look at, the same as JSON, and
JUnit XML for CI; every link relative to the page, so the folder can be copied."""

from __future__ import annotations

import html
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from distkernel.core import cache
from distkernel.workflows.matrix.run import MatrixRun

STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}
.passed{background:#dfd}.failed{background:#fdd}details{max-width:40em}"""


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / (1 << 20):.1f} MiB"


def _link(folder: Path, target: str | None, label: str) -> str:
    if not target:
        return ""
    rel = os.path.relpath(target, folder)
    return f'<a class="{label.replace(" ", "-")}" href="{html.escape(rel)}">{html.escape(label)}</a>'


def _changes(c: dict[str, Any]) -> str:
    ch = c.get("config_changes")
    if not ch:
        return "-"
    head = f"{ch['added']} added, {ch['removed']} removed, {ch['changed']} changed since {ch.get('since') or '-'}"
    items = "".join(f"<li>{html.escape(x)}</li>" for x in ch["items"])
    return f"<details><summary>{html.escape(head)}</summary><ul>{items}</ul></details>" if items else html.escape(head)


def html_page(run: MatrixRun) -> str:
    rows = []
    for c in run.cells:
        status = c["status"] + (f" ({c['failure']})" if c.get("failure") else "")
        links = " ".join(
            x
            for x in (
                _link(run.folder, c.get("log"), "build log"),
                _link(run.folder, c.get("config_report"), "config report"),
                _link(run.folder, c.get("console_log"), "console log"),
            )
            if x
        )
        klass = "passed" if c["status"] == "passed" else "failed"
        cells = [
            c["name"],
            c.get("arch", ""),
            c.get("version", "-"),
            status,
            f"{c.get('build_s', 0):.1f} s" + (" (cached)" if c.get("cached") else ""),
            f"{c['boot_s']:.1f} s" if c.get("boot_s") is not None else "-",
            _size(c.get("size")),
        ]
        tds = "".join(f"<td>{html.escape(str(x))}</td>" for x in cells)
        rows.append(
            f'<tr class="cell {klass}" data-cell="{html.escape(c["name"])}">{tds}'
            f"<td>{_changes(c)}</td><td>{links}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("cell", "arch", "version", "status", "build", "boot", "package", "config changes", "logs")
    )
    summary = f"{sum(c['status'] == 'passed' for c in run.cells)} of {len(run.cells)} cells passed"
    published = "".join(f"<li>{html.escape(p)}</li>" for p in run.published) or "<li>none</li>"
    pruned = "".join(f"<li>{html.escape(p)}</li>" for p in run.pruned) or "<li>none</li>"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>distkernel matrix {html.escape(run.folder.name)}"
        f"</title><style>{STYLE}</style></head><body><h1>Matrix {html.escape(run.matrix.path.name)}</h1>"
        f"<p id='summary'>{summary} in {run.seconds:.0f} s ({run.workers} at a time)</p>"
        f"<table id='cells'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h2>Published</h2><ul id='published'>{published}</ul><h2>Pruned</h2><ul id='pruned'>{pruned}</ul>"
        "</body></html>\n"
    )


def junit(run: MatrixRun) -> bytes:
    suite = ET.Element("testsuite", name=f"matrix {run.matrix.path.name}", tests=str(len(run.cells)))
    suite.set("failures", str(sum(c["status"] != "passed" for c in run.cells)))
    for c in run.cells:
        seconds = (c.get("build_s") or 0) + (c.get("boot_s") or 0)
        case = ET.SubElement(suite, "testcase", classname="matrix", name=c["name"], time=f"{seconds:.2f}")
        if c["status"] != "passed":
            f = ET.SubElement(case, "failure", type=c.get("failure") or c["status"], message=c["status"])
            f.text = c.get("detail") or ""
    data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data


def write_report(run: MatrixRun) -> Path:
    cache.atomic_write_text(run.folder / "index.html", html_page(run))
    cache.atomic_write_text(run.folder / "report.json", json.dumps(run.to_json(), indent=1) + "\n")
    cache.atomic_write_bytes(run.folder / "junit.xml", junit(run))
    latest = run.folder.parent.parent / "latest"
    tmp = latest.with_name(".latest.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run.folder, latest.parent))
    tmp.replace(latest)
    return run.folder / "index.html"
