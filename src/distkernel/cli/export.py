"""export: a package as Debian .debs or a Gentoo .gpkg.tar, for the package manager a
system already runs. The package is judged whole by the one strict reader first."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from distkernel.cli import options, render
from distkernel.workflows.export.deb import export_deb
from distkernel.workflows.export.gpkg import export_gpkg

FORMATS = ("deb", "gpkg")


@click.command()
@click.argument("package", type=options.PACKAGE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="deb: linux-image and linux-headers .debs; gpkg: a GLEP 78 Gentoo binary package.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write into (for gpkg, a PKGDIR: CATEGORY/PN/PF-BUILD_ID.gpkg.tar).",
)
@click.option(
    "--build-id",
    type=int,
    default=1,
    show_default=True,
    help="gpkg: the BUILD_ID that keeps builds of one version apart (binpkg-multi-instance).",
)
@options.JSON
def export(package: Path, fmt: str, out: Path, build_id: int, as_json: bool) -> None:
    """Export PACKAGE as another package manager's packages."""
    files = export_deb(package, out) if fmt == "deb" else export_gpkg(package, out, build_id)
    if as_json:
        render.emit_json(
            {"package": str(package), "format": fmt, "files": [asdict(f) | {"path": str(f.path)} for f in files]}
        )
        return
    render.table(
        None,
        ("package", "version", "size", "file"),
        [(f.package, f.version, render.human_size(f.size), str(f.path)) for f in files],
    )


COMMANDS = [export]
