"""inspect and verify: reading packages. Both judge the whole package with the one
reader (build/package/reader.py), as install does: a refused package is one line,
exit 2, whichever command reads it."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.build.package.format import Metadata
from distkernel.build.package.reader import check_package
from distkernel.build.trust.signing import check_signature, load_trusted
from distkernel.cli import options, render
from distkernel.core.errors import Failure

PKG = options.PACKAGE


def describe(path: Path, m: Metadata) -> None:
    rows = [
        ("package", path.name),
        ("kernel release", m.kernel_release),
        ("name / variant", f"{m.name} / {m.variant or '-'}"),
        ("arch", m.arch),
        ("source", f"{m.source.get('origin')} ({m.version})"),
        ("built from", f"recipe {m.recipe_sha256[:12]}, config {m.config_sha256[:12]}"),
        ("toolchain", m.toolchain.get("gcc", "")),
        ("modules", f"{len(m.modules)}: {', '.join(m.modules[:8])}{' ...' if len(m.modules) > 8 else ''}"),
        (
            "payload",
            ", ".join(f"{k} {render.human_size(v)}" for k, v in m.sizes.items() if k != "files")
            + f" ({m.sizes.get('files', 0)} files)",
        ),
        ("file size", render.human_size(path.stat().st_size)),
    ]
    render.table(None, ("", ""), rows)


@click.command()
@click.argument("package", type=PKG)
@options.JSON
def inspect(package: Path, as_json: bool) -> None:
    """Show a package's metadata, once the whole package is checked."""
    m = check_package(package).metadata
    if as_json:
        render.emit_json(m.to_json())
    else:
        describe(package, m)


@click.command()
@click.argument("package", type=PKG)
@click.option(
    "--key",
    "keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Also require a manifest signature by this public key (repeatable: any of them).",
)
@options.JSON
def verify(package: Path, keys: tuple[Path, ...], as_json: bool) -> None:
    """Check the whole package (format, metadata, every payload file against its manifest,
    the kernel image against the metadata) and its signature with --key."""
    result = check_package(package)  # a refused package: PackageError, one line, exit 2
    signer, problems = None, []
    if keys:
        signer, why = check_signature(result.manifest_bytes, result.signature, load_trusted(keys))
        if signer is None:
            problems.append(f"manifest.sig: {why}")
    if as_json:
        render.emit_json(
            {
                "package": str(package),
                "ok": not problems,
                "files": result.files,
                "bytes": result.bytes,
                "problems": problems,
                "signed_by": signer.fingerprint if signer else None,
            }
        )
        if problems:
            raise SystemExit(1)
        return
    if problems:
        raise Failure(f"{package}: {problems[0]}; do not install it where --key is required")
    signed = f"; signed by {signer.origin.name} ({signer.fingerprint[:16]})" if signer else ""
    size = render.human_size(result.bytes)
    render.out.print(f"{package.name}: OK, {result.files} files ({size}) match the manifest{signed}")


COMMANDS = (inspect, verify)
