"""install, list, remove, rollback, mark-good, recover: kernels in a root."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from distkernel.cli import options, render
from distkernel.core.errors import Failure, UserError

# The install stage is imported by the commands that use it, not at start-up: it pulls
# in the initramfs, external-module and trust stages, about a third of `install`'s start-up.
if TYPE_CHECKING:
    from distkernel.target.install import FromBinhost, Installation, State
    from distkernel.target.install.plan import Plan

ROOT = options.ROOT
JSON = options.JSON


def package_path(
    spec: str, sources: tuple[str, ...], root: Path, with_headers: bool = False
) -> tuple[Path, FromBinhost | None]:
    """PKG is a package file; NAME --from URL... is resolved from a binhost (mirrors
    in order), the URLs defaulting to the root's own settings file's binhost: then the
    package is its kernel part, with the headers part when the root builds external
    modules (or WITH_HEADERS), and where it came from."""
    path = Path(spec)
    if path.is_file():
        return path, None
    from distkernel.core.settings import root_binhosts

    urls = list(sources) or root_binhosts(root)
    if not urls:
        raise UserError(f"{spec}: no such package file; pass a .tar.zst file, or NAME --from URL")
    from distkernel.target.install import FromBinhost
    from distkernel.target.install.state import Origin
    from distkernel.workflows.repo.fetch import fetch_for_root

    got = fetch_for_root(spec, urls, root, with_headers=with_headers)
    headers = got.entry.headers
    origin = Origin(
        got.urls,
        got.manifest_sha256,
        headers.path if headers else "",
        headers.size if headers else 0,
        headers.sha256 if headers else "",
    )
    return got.package, FromBinhost(got.part, got.headers, origin, got.verified)


def _installation_json(inst: Installation) -> dict[str, Any]:
    doc = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(inst).items()}
    doc["entries"] = [str(e) for e in inst.entries]
    doc["uki_signed"] = bool(inst.uki_signer) if inst.uki else None
    return doc


def _secure_boot(has_uki: bool, signer: str) -> str:
    """A UKI signed (by whom) or not; "-" for layouts without a UKI."""
    if not has_uki:
        return "-"
    return f"signed by {signer}" if signer else "unsigned"


def show_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        render.emit_json(plan.to_json())
        return
    render.out.print(f"would {plan.action} {plan.release} in {plan.root} ({plan.layout} layout):", markup=False)
    rows = [
        *((k, v) for k, v in plan.details.items()),
        *(("place", p) for p in plan.place),
        *(("remove", p) for p in plan.remove),
        *(("rewrite", p) for p in plan.rewrite),
    ]
    render.table(None, ("", ""), rows)
    render.out.print("dry run: nothing was changed", markup=False)


@click.command()
@click.argument("package", metavar="PACKAGE|NAME")
@ROOT
@options.LAYOUT
@options.INITRAMFS
@options.KEEP
@click.option("--cmdline", help="Kernel command line [default: the root's /etc/kernel/cmdline].")
@click.option(
    "--from",
    "source",
    metavar="URL",
    multiple=True,
    help="Fetch NAME from this binhost; repeat it for mirrors, tried in order [default: distkernel.toml binhost].",
)
@click.option(
    "--with-headers",
    is_flag=True,
    help="Place the headers tree too (with --from: fetch the headers part) [default: only when the root "
    "builds external modules].",
)
@options.DRY_RUN
@JSON
def install(
    package: str,
    root: Path,
    layout: str | None,
    initramfs: str | None,
    keep: int,
    cmdline: str | None,
    source: tuple[str, ...],
    with_headers: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Install a kernel package into a root, transactionally."""
    from distkernel.target.install import install_package

    # A binhost only ever yields the exact package asked for, never a build from source.
    with render.progress():  # a download's bytes and rate, dracut's running time (on a terminal)
        path, fetched = package_path(package, source, root, with_headers)
        if dry_run:
            from distkernel.target.install.api import places_headers
            from distkernel.target.install.plan import install_plan

            headers = places_headers(root, fetched, with_headers)
            show_plan(install_plan(path, root, layout, initramfs, cmdline, keep, headers=headers), as_json)
            return
        inst = install_package(
            path,
            root,
            layout=layout,
            initramfs=initramfs,
            cmdline=cmdline,
            keep=keep,
            fetched=fetched,
            with_headers=with_headers,
        )
    if as_json:
        render.emit_json(_installation_json(inst))
        return
    rows = [
        ("kernel", inst.release),
        ("layout", inst.layout),
        ("image", inst.image),
        ("initramfs", f"{inst.initrd} ({inst.initramfs_backend})" if inst.initrd else inst.initramfs_backend),
        *(("entry", e) for e in inst.entries),
        ("secure boot", _secure_boot(inst.uki is not None, inst.uki_signer)),
        ("default", "yes" if inst.default else "no (a required external module failed)"),
        ("cmdline", inst.cmdline or "-"),
        ("headers", str(inst.headers_dir) if inst.headers else "not fetched (`modules add` fetches them)"),
        *(
            ("module", f"{m.name} {m.version}: {_module_outcome(m.ok, m.status, m.reason)}")
            for m in inst.external_modules
        ),
        ("pruned", ", ".join(inst.pruned) or "-"),
        ("hooks", ", ".join(inst.hooks) or "-"),
    ]
    render.table(None, ("", ""), rows)


def _module_outcome(ok: bool, status: str, reason: str) -> str:
    """built, or why not: excluded (the BUILD_EXCLUSIVE rule), skipped, FAILED (the error)."""
    if not ok:
        return f"FAILED {reason}"
    return f"{status}: {reason}" if status in ("excluded", "skipped") else status or "ok"


def _state_json(state: State, boot: dict[str, str]) -> dict[str, Any]:
    return {
        "default": state.default,
        "kernels": [
            {
                **k.to_json(),
                "default": k.release == state.default,
                "uki_signed": bool(k.uki_signer) if k.uki else None,
                "boot": boot.get(k.release, ""),
            }
            for k in state.ordered()
        ],
    }


def _show_state(state: State, as_json: bool, root: Path | None = None) -> None:
    from distkernel.target.install.manage import boot_status

    boot = {k.release: boot_status(root, k) for k in state.kernels.values()} if root else {}
    if as_json:
        render.emit_json(_state_json(state, boot))
        return
    if not state.kernels:
        render.out.print("no kernels installed by distkernel here", markup=False)
        return
    rows = []
    for k in state.ordered():
        failed = [m.name for m in k.external_modules if not m.ok]
        rows.append(
            (
                k.release,
                k.layout,
                "yes" if k.release == state.default else "",
                "yes" if k.known_good else "",
                boot.get(k.release, ""),
                k.initramfs,
                ("FAILED: " + ", ".join(failed)) if failed else "ok",
                _secure_boot(bool(k.uki), k.uki_signer),
                k.package,
            )
        )
    columns: tuple[str, ...] = ("kernel", "layout", "default", "known-good", "boot", "initramfs", "ext. modules")
    columns += ("secure boot",)
    columns += ("package",)
    render.table(None, columns, rows)
    if not any(k.release == state.default for k in state.kernels.values()):
        render.out.print("no default kernel: none of these is bootable", markup=False)


@click.command("list")
@ROOT
@JSON
def list_(root: Path, as_json: bool) -> None:
    """The kernels distkernel installed in a root."""
    from distkernel.target.install import load_state

    _show_state(load_state(root), as_json, Path(root).resolve())


@click.command()
@click.argument("release")
@ROOT
@click.option("--force", is_flag=True, help="Also remove the last kernel distkernel installed in the root.")
@options.DRY_RUN
@JSON
def remove(release: str, root: Path, force: bool, dry_run: bool, as_json: bool) -> None:
    """Remove a kernel distkernel installed; when it was the default, the next bootable
    one becomes the default (loader.conf and links follow)."""
    from distkernel.target.install import remove_kernel

    if dry_run:
        from distkernel.target.install.plan import remove_plan

        show_plan(remove_plan(root, release, force), as_json)
        return
    _show_state(remove_kernel(root, release, keep_last=not force), as_json)


@click.command("rollback")
@ROOT
@JSON
def rollback_(root: Path, as_json: bool) -> None:
    """Make the kernel installed before the default one the default."""
    from distkernel.target.install import rollback

    _show_state(rollback(root), as_json)


@click.command("mark-good")
@click.argument("release", required=False)
@ROOT
@JSON
def mark_good_(release: str | None, root: Path, as_json: bool) -> None:
    """Mark a kernel known-good (default: the running one on /, else the default)."""
    from distkernel.target.install import mark_good

    _show_state(mark_good(root, release), as_json, Path(root).resolve())


@click.command("recover")
@ROOT
@JSON
def recover_(root: Path, as_json: bool) -> None:
    """Finish or undo an interrupted install or remove, then check the root."""
    from distkernel.target.install import recover

    done, problems = recover(root)
    if as_json:
        render.emit_json({"recovered": done, "problems": problems})
    else:
        render.out.print(done or "nothing was interrupted", markup=False)
    if problems:
        raise Failure(f"{root}: {len(problems)} inconsistenc(ies) remain", details=problems)


COMMANDS: list[click.Command] = [install, list_, remove, rollback_, mark_good_, recover_]
