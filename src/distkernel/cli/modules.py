"""modules add | remove | list | rebuild: external modules, rebuilt for every kernel."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from distkernel.cli import options, render
from distkernel.cli.render import emit_json, err, out, table
from distkernel.core.errors import Failure
from distkernel.target.extmod.builder import ModuleOutcome
from distkernel.target.extmod.registry import KernelStatus
from distkernel.target.install import modules as ops

root_option = options.ROOT
json_option = options.JSON
jobs_option = options.JOBS


@click.group("modules")
def modules() -> None:
    """External (out-of-tree) modules, rebuilt for every installed kernel before its initramfs."""


def _outcome_json(o: ModuleOutcome) -> dict[str, Any]:
    return {**asdict(o), "log": str(o.log) if o.log else None}


def _show(change: ops.Change, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "modules": [asdict(m) for m in change.modules],
                "outcomes": [_outcome_json(o) for o in change.outcomes],
                "initramfs_refreshed": list(change.refreshed),
                "kernels": list(change.kernels),
                "default": change.default,
                "notes": list(change.notes),
            }
        )
    else:
        for m in change.modules:
            if m.ignored:
                err.print(f"{m.name}: dkms.conf: ignored {', '.join(m.ignored)}", markup=False)
        if change.outcomes:
            rows = [
                (o.name, o.version, o.release, o.status, o.signed or "-", ", ".join(o.files) or o.reason)
                for o in change.outcomes
            ]
            table(None, ("module", "version", "kernel", "status", "signature", "installed / why"), rows)
        for o in change.failed:
            if o in change.default_lacks_required:
                continue  # the error below says it
            err.print(f"{o.name} failed for {o.release}: {o.reason}", markup=False)
            err.print(f"  log: {o.log}", markup=False)
        if change.refreshed:
            out.print(f"initramfs made again for: {', '.join(change.refreshed)}", markup=False)
        for note in change.notes:
            out.print(note, markup=False)
    if missing := change.default_lacks_required:
        o = missing[0]
        raise Failure(
            f"required module {o.name} failed to build for the default kernel {o.release} (log: {o.log}); "
            f"{o.release} stays the default, as it was booting without {o.name}",
            details=["fix the module's source, then run `distkernel modules add SRC --required` again"],
        )
    if change.failed:
        sys.exit(1)


def _headers(root: Path, releases: list[str] | None = None) -> None:
    """The headers of kernels installed without them, from their binhost or package file."""
    from distkernel.workflows.repo.headers import fetch_missing_headers

    for release, source in fetch_missing_headers(root, releases):
        err.print(f"fetched the headers of {release} from {source}", markup=False)


@modules.command("add")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--name", help="Register under this name [default: dkms.conf PACKAGE_NAME, else the folder's name].")
@click.option("--version", "version", help="[default: dkms.conf PACKAGE_VERSION, else the source's hash].")
@click.option("--initramfs", is_flag=True, help="Carry its modules in every initramfs.")
@click.option("--required", is_flag=True, help="A kernel it fails to build for never becomes the default.")
@root_option
@jobs_option
@json_option
def add(
    src: Path,
    name: str | None,
    version: str | None,
    initramfs: bool,
    required: bool,
    root: Path,
    jobs: int,
    as_json: bool,
) -> None:
    """Register SRC (a folder with a Kbuild/Makefile or a dkms.conf) and build it for every
    installed kernel (fetching the headers of a kernel installed from a binhost without them)."""
    with render.progress():  # the downloads' bytes, the builds' running time, on a terminal
        _headers(root.resolve())
        change = ops.add_module(
            root.resolve(), src, name=name, version=version, initramfs=initramfs, required=required, cores=jobs or None
        )
    _show(change, as_json)


@modules.command("remove")
@click.argument("name")
@root_option
@json_option
def remove(name: str, root: Path, as_json: bool) -> None:
    """Take NAME out of every kernel and initramfs, and out of the registry."""
    change = ops.remove_module(root.resolve(), name)
    if not as_json:
        out.print(f"removed {name} from {len(change.kernels)} kernel(s)", markup=False)
    _show(change, as_json)


@modules.command("rebuild")
@click.argument("names", nargs=-1)
@click.option("--kernel", "release", metavar="KREL", help="Only this installed kernel.")
@click.option("--all", "all_kernels", is_flag=True, help="Every installed kernel.")
@root_option
@jobs_option
@json_option
def rebuild(
    names: tuple[str, ...], release: str | None, all_kernels: bool, root: Path, jobs: int, as_json: bool
) -> None:
    """Build NAMES (default: every registered module) again, for the default kernel
    (or --kernel KREL, or --all)."""
    if release and all_kernels:
        raise click.UsageError("--kernel and --all exclude each other")
    with render.progress():
        _headers(root.resolve(), [release] if release else None)
        change = ops.rebuild(root.resolve(), names, release=release, all_kernels=all_kernels, cores=jobs or None)
    _show(change, as_json)


@modules.command("list")
@root_option
@json_option
def list_(root: Path, as_json: bool) -> None:
    """Registered modules and their last build for each installed kernel."""
    entries = ops.listing(root.resolve())
    if as_json:
        emit_json([{"module": asdict(m), "kernels": [asdict(s) for s in kernels]} for m, kernels in entries])
        return
    rows = []
    for m, kernels in entries:
        flags = ",".join(f for f, on in (("initramfs", m.initramfs), ("required", m.required)) if on) or "-"
        builds: list[KernelStatus | None] = [*kernels] or [None]
        for s in builds:
            detail = (", ".join(s.files) if s.status == "built" else f"{s.reason} (log: {s.log})") if s else ""
            rows.append(
                (m.name, m.version, m.kind, flags, s.release if s else "-", s.status if s else "not built", detail)
            )
    if not rows:
        out.print(f"no external module is registered in {root}", markup=False)
        return
    table(None, ("module", "version", "kind", "flags", "kernel", "status", "installed / why"), rows)


COMMANDS: list[click.Command] = [modules]
