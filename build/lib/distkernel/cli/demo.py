"""demo: the main job on the embedded default, end to end: build the default recipe,
verify the package, install it into a sandbox root, boot it in qemu, print the result."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.build.recipe import load_recipe
from distkernel.cli import options, render
from distkernel.cli.build import RECIPE, default_recipe
from distkernel.workflows.pipeline import build_package


@click.command()
@click.argument("recipe", type=RECIPE, required=False)
@options.OUT_DIR
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-root"),
    show_default=True,
    help="The sandbox root the package is installed into (never this machine's /).",
)
@options.JSON
def demo(recipe: Path | None, out: Path, root: Path, as_json: bool) -> None:
    """Build RECIPE (default: the embedded qemu-minimal), install it into --root and
    boot it in qemu; exit 0 only when the booted kernel printed its marker."""
    from distkernel.build.package.reader import check_package
    from distkernel.cli.boot import result_line
    from distkernel.cli.package import describe
    from distkernel.core.errors import Failure, UserError
    from distkernel.target.install import install_package
    from distkernel.workflows.boottest.run import BootOptions, boot_test

    if root.resolve() == Path("/"):
        raise UserError("--root /: the demo installs into a sandbox root; pass an empty folder")
    r = load_recipe(recipe or default_recipe())
    with render.progress() as p:
        built = build_package(r, out, progress=p)
    checked = check_package(built.package)
    root.mkdir(parents=True, exist_ok=True)
    inst = install_package(built.package, root, layout="plain", initramfs="builtin", cmdline=None)
    booted = boot_test(built.package, BootOptions(firmware="bios", timeout=60, retries=1))
    if as_json:
        render.emit_json(
            {
                "package": str(built.package),
                "cached": built.cached,
                "verified_files": checked.files,
                "installed": {"root": str(root), "release": inst.release, "image": str(inst.image)},
                "boot": {"passed": booted.passed, "outcome": booted.final.outcome, "marker_s": booted.final.marker_s},
            }
        )
    else:
        describe(built.package, built.metadata)
        render.out.print(f"verified: {checked.files} files match the manifest")
        render.out.print(f"installed: {inst.release} into {root} (plain layout, builtin initramfs)", markup=False)
        render.prose(result_line(booted))
    if not booted.passed:
        raise Failure(f"the demo kernel did not boot: {booted.final.outcome}", log=booted.final.console_log)


COMMANDS: list[click.Command] = [demo]
