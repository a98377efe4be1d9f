"""inspect and verify: reading packages."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.build.package.format import Metadata
from distkernel.build.package.reader import VerifyResult, read_metadata, verify_package
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


def verify_or_fail(path: Path) -> VerifyResult:
    result = verify_package(path)
    if not result.ok:
        raise Failure(
            f"{path}: {len(result.problems)} problem(s): the package is corrupt or was altered; do not install it",
            details=result.problems[:20],
        )
    return result


@click.command()
@click.argument("package", type=PKG)
@options.JSON
def inspect(package: Path, as_json: bool) -> None:
    """Show a package's metadata (reads only its first member)."""
    m = read_metadata(package)
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
    """Check every payload file against the package's manifest (and its signature with --key)."""
    result = verify_package(package)
    signer = None
    if keys and result.manifest is not None:
        signer, why = check_signature(result.manifest.to_bytes(), result.signature, load_trusted(keys))
        if signer is None:
            result.problems.append(f"manifest.sig: {why}")
    if as_json:
        render.emit_json(
            {
                "package": str(package),
                "ok": result.ok,
                "files": result.files,
                "bytes": result.bytes,
                "problems": result.problems,
                "signed_by": signer.fingerprint if signer else None,
            }
        )
        if not result.ok:
            raise SystemExit(1)
        return
    if not result.ok:
        raise Failure(
            f"{package}: {len(result.problems)} problem(s): the package is corrupt, altered or not signed by --key; "
            "do not install it",
            details=result.problems[:20],
        )
    signed = f"; signed by {signer.origin.name} ({signer.fingerprint[:16]})" if signer else ""
    size = render.human_size(result.bytes)
    render.out.print(f"{package.name}: OK, {result.files} files ({size}) match the manifest{signed}")


COMMANDS = (inspect, verify)
