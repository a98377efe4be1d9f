"""key generate, sign: signing keys, and signing a package built without one."""

from __future__ import annotations

from pathlib import Path

import click

from distkernel.build.trust.keys import ALL, PRIVATE, generate_keys
from distkernel.cli import render

DIR = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def key() -> None:
    """Signing keys."""


@key.command("generate")
@click.option("--out", type=DIR, required=True, help="Folder for the new keys (never overwritten).")
@click.option("--name", default="distkernel", show_default=True, help="Common name in the certificates.")
@JSON
def key_generate(out: Path, name: str, as_json: bool) -> None:
    """An Ed25519 pair (packages, repo indexes), a module signing key + certificate,
    and a secure-boot db key + certificate. Private files are mode 0600."""
    keys = generate_keys(out, name=name)
    doc = {
        "folder": str(keys.folder),
        "files": {n: str(keys.path(n)) for n in ALL},
        "private": [str(keys.path(n)) for n in PRIVATE],
        "fingerprints": {
            "package": keys.package_fingerprint,
            "modules": keys.module_fingerprint,
            "secureboot": keys.db_fingerprint,
        },
    }
    if as_json:
        render.emit_json(doc)
        return
    rows = [
        ("package.key / package.pub", f"Ed25519, packages and repo indexes ({keys.package_fingerprint[:16]})"),
        (
            "module.pem / module.crt",
            f"RSA-4096 + X.509 codeSigning: recipe sign.modules ({keys.module_fingerprint[:16]})",
        ),
        ("db.key / db.crt", f"RSA-2048 + X.509: secure-boot db, sbsign ({keys.db_fingerprint[:16]})"),
    ]
    render.table(str(keys.folder), ("files", "for"), rows)
    render.out.print("private files (0600): " + ", ".join(PRIVATE) + "; keep them off clients and out of repos")


@click.command()
@click.argument("package", type=FILE)
@click.option("--key", "key_path", type=FILE, required=True, help="Ed25519 private key (package.key) to sign with.")
@JSON
def sign(package: Path, key_path: Path, as_json: bool) -> None:
    """Sign PACKAGE's manifest in place (replacing any signature it has): the same
    bytes a build with `[sign] package = KEY` writes."""
    from distkernel.workflows.repo.sign import sign_package

    fingerprint = sign_package(package, key_path)
    if as_json:
        render.emit_json({"package": str(package), "key": fingerprint})
        return
    render.out.print(f"{package}: signed by key {fingerprint[:16]}")


COMMANDS: list[click.Command] = [key, sign]
