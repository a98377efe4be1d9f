"""test: boot a package under qemu and report one result line (or JSON, or JUnit)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn

from distkernel.cli import options, render
from distkernel.core.errors import UserError
from distkernel.workflows.boottest import FIRMWARES, BootOptions, BootResult, boot_installed, boot_test
from distkernel.workflows.boottest.accel import ACCELS
from distkernel.workflows.boottest.junit import write_junit
from distkernel.workflows.boottest.result import Attempt


class BootProgress:
    """The boot's phase (firmware, loader, kernel, init, marker) and the seconds elapsed
    out of the timeout, on one line of stderr; nothing when stderr is no terminal."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.task: Any = None

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is None:
            self.task = self.bar.add_task(name, total=total)
        self.bar.update(self.task, description=name, total=total)

    def update(self, done: int, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total)


@contextmanager
def boot_progress(enabled: bool) -> Iterator[BootProgress]:
    bar = Progress(
        TextColumn("boot: {task.description:<8}"),
        BarColumn(),
        TextColumn("{task.completed:>3.0f}/{task.total:.0f} s"),
        console=render.err,
        transient=True,
        disable=not (enabled and render.err.is_terminal),
    )
    with bar:
        yield BootProgress(bar)


PKG = options.PACKAGE


def _attempt_text(a: Attempt) -> str:
    what = a.outcome.upper() if a.passed else f"{a.outcome}: {a.detail}".rstrip(": ")
    when = f"marker after {a.marker_s:.2f} s" if a.marker_s is not None else f"after {a.seconds:.1f} s"
    return f"{what} ({when}, {a.accel})"


def result_line(r: BootResult) -> str:
    a = r.final
    tries = f", attempt {a.number}/{len(r.attempts)}" if len(r.attempts) > 1 else ""
    if r.passed:
        return (
            f"PASS {r.case}: marker after {a.marker_s:.2f} s "
            f"({r.boot}, {a.accel}{tries}; prepared in {r.prepare_s:.1f} s)"
        )
    return f"FAIL {r.case}: {a.outcome}: {a.detail} ({r.boot}, {a.accel}, after {a.seconds:.1f} s{tries})"


@click.command("test")
@click.argument("target", metavar="PKG | --root DIR [RELEASE]", required=False)
@options.root(default=None, help="Boot the kernel installed in this root (RELEASE, default: its default kernel).")
@click.option("--firmware", type=click.Choice(FIRMWARES), default="bios", show_default=True)
@options.layout("Install layout the boot goes through [default: plain for bios, bls for uefi].")
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds per attempt.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Boot again after a panic or a timeout (failures that can be flaky).",
)
@click.option("--accel", type=click.Choice(ACCELS), default="auto", show_default=True, help="auto: KVM when it works.")
@click.option("--append", default="", help="Extra kernel command-line arguments.")
@click.option(
    "--module",
    "modules",
    multiple=True,
    help="A module the test init loads (repeatable) [default: the package's [test] modules; none with --root].",
)
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), help="Where console logs are kept.")
@click.option("--keep-logs", is_flag=True, help="Keep the console logs of a passing test too.")
@options.JSON
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit XML report here.")
def test(
    target: str | None,
    root: Path | None,
    firmware: str,
    layout: str | None,
    timeout: float,
    retries: int,
    accel: str,
    append: str,
    modules: tuple[str, ...],
    log_dir: Path | None,
    keep_logs: bool,
    as_json: bool,
    junit: Path | None,
) -> None:
    """Boot PKG under qemu, or with --root the kernel installed there, with a test init
    (uname -r, the test modules, a marker unique to this run). Exit 0 pass, 1 the
    kernel failed, 2 it cannot boot this way (checked before booting), 3 qemu or KVM
    could not run."""
    opts = BootOptions(
        firmware=firmware,
        layout=layout,
        timeout=timeout,
        retries=retries,
        accel=accel,
        append=append,
        modules=modules or None,
        log_dir=log_dir,
        keep_logs=keep_logs,
    )

    def progress(a: Attempt) -> None:
        if not as_json and not a.passed and a.number <= retries:
            render.err.print(f"attempt {a.number}: {_attempt_text(a)}; retrying", markup=False)

    with boot_progress(not as_json) as shown:
        if root is not None:
            result = boot_installed(root, target, opts, on_attempt=progress, progress=shown)
        else:
            result = boot_test(_package(target), opts, on_attempt=progress, progress=shown)
    if junit:
        write_junit(junit, [result])
    if as_json:
        render.emit_json(result.to_json())
    else:
        render.prose(result_line(result))
        if result.final.console_log:
            render.field("console log", str(result.final.console_log))
        if not result.passed:
            render.out.print(f"accel: {result.accel} ({result.accel_reason})", markup=False)
    sys.exit(result.exit_code)


def _package(target: str | None) -> Path:
    if target is None:
        raise UserError("test: pass a package file (distkernel test PKG), or --root DIR [RELEASE]")
    path = Path(target)
    if not path.is_file():
        raise UserError(f"{target}: no such package file; pass a .tar.zst file, or --root DIR [RELEASE]")
    return path


COMMANDS: list[click.Command] = [test]
