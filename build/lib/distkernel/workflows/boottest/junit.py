"""JUnit XML for CI: one test case per boot test; a failure carries its class and
line, earlier attempts appear as flakyFailure / rerunFailure (the Surefire convention
Jenkins and GitLab read), and the console log's tail is the case's system-out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import suppress
from pathlib import Path

from distkernel.core import cache
from distkernel.workflows.boottest.result import Attempt, BootResult

TAIL_LINES = 60


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    with suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
    return ""


def _failure(parent: ET.Element, tag: str, a: Attempt) -> None:
    el = ET.SubElement(parent, tag, message=f"{a.outcome}: {a.detail}".rstrip(": "), type=a.outcome)
    el.text = f"attempt {a.number}, {a.accel}, {a.seconds:.1f} s, console log: {a.console_log}"
    if tag != "failure":
        ET.SubElement(el, "system-out").text = _tail(a.console_log)


def junit_xml(results: list[BootResult]) -> bytes:
    failures = sum(not r.passed for r in results)
    suite = ET.Element(
        "testsuite",
        name="distkernel.boot",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(a.seconds for r in results for a in r.attempts):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"distkernel.boot.{r.arch}.{r.firmware}",
            name=r.case,
            time=f"{r.final.seconds:.3f}",
        )
        earlier = r.attempts[:-1]
        if r.passed:
            for a in earlier:
                _failure(case, "flakyFailure", a)
        else:
            _failure(case, "failure", r.final)
            for a in earlier:
                _failure(case, "rerunFailure", a)
        ET.SubElement(case, "system-out").text = _tail(r.final.console_log)
    ET.indent(suite)
    xml: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


def write_junit(path: Path, results: list[BootResult]) -> None:
    cache.atomic_write_bytes(path, junit_xml(results))
