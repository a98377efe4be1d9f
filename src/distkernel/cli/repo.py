"""repo init/add/serve and fetch: the binhost, publishing and client side."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from distkernel.build.trust.gate import TRUSTED_DIR, trusted_keys
from distkernel.build.trust.signing import load_trusted
from distkernel.cli import options, render
from distkernel.workflows.repo.fetch import (
    ROOT_DOWNLOADS,
    Client,
    fetch_package,
    host_arch,
    indexes_dir,
    serials_file,
    split_spec,
)
from distkernel.workflows.repo.index import Index, add_packages, init_repo
from distkernel.workflows.repo.server import make_server

DIR = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _show_index(repo: Path, index: Index, as_json: bool) -> None:
    if as_json:
        render.emit_json({"repo": str(repo), "serial": index.serial, "packages": [e.to_json() for e in index.entries]})
        return
    rows = [
        (
            e.name,
            e.kernel_release,
            e.arch,
            e.variant or "-",
            render.human_size(e.size),
            render.human_size(e.headers.size) if e.headers else "-",
            e.path,
        )
        for e in index.entries
    ]
    if rows:
        render.table(None, ("name", "release", "arch", "variant", "kernel part", "headers part", "path"), rows)
    render.out.print(f"{repo}: serial {index.serial}, {len(index.entries)} package(s)")


@click.group()
def repo() -> None:
    """A binhost: a folder of packages with a signed index, served over HTTP."""


@repo.command("init")
@click.argument("directory", type=DIR)
@click.option("--key", "key_path", type=FILE, required=True, help="Ed25519 private key that signs the index.")
@JSON
def repo_init(directory: Path, key_path: Path, as_json: bool) -> None:
    """Create an empty repo in DIRECTORY, its index signed by --key."""
    _show_index(directory, init_repo(directory, key_path), as_json)


@repo.command("add")
@click.argument("directory", type=DIR)
@click.argument("packages", type=FILE, nargs=-1, required=True)
@click.option("--key", "key_path", type=FILE, help="Signing key [default: the one given to `repo init`].")
@JSON
def repo_add(directory: Path, packages: tuple[Path, ...], key_path: Path | None, as_json: bool) -> None:
    """Copy verified PACKAGES in and publish a new index (its serial grows by one)."""
    _show_index(directory, add_packages(directory, list(packages), key_path), as_json)


@repo.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@JSON
def repo_serve(directory: Path, port: int, host: str, as_json: bool) -> None:
    """Serve the repo over HTTP (the index and packages only) until interrupted."""
    server = make_server(directory, port, host)
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}/"
    # One line on stdout, flushed: scripts (and tests) read the URL from it.
    if as_json:
        sys.stdout.write(json.dumps({"serving": str(directory), "url": url}) + "\n")
    else:
        sys.stdout.write(f"serving {directory} at {url}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


@click.command()
@click.argument("spec", metavar="NAME[+VARIANT][@VERSION]")
@click.option(
    "--from",
    "source",
    metavar="URL",
    multiple=True,
    required=True,
    help="The binhost (http(s):// or a folder); repeat it for mirrors, tried in order.",
)
@click.option("--key", "keys", type=FILE, multiple=True, help="Public key the repo must be signed with (repeatable).")
@options.root(default=None, help="Trust ROOT's keys (etc/distkernel/trusted.d) and remember serials there.")
@click.option("--arch", help="Package arch [default: this machine's].")
@click.option("--variant", help="Package variant [default: none, or +VARIANT in the name].")
@click.option("--out", type=DIR, default=Path("."), show_default=True, help="Where the package is written.")
@JSON
def fetch(
    spec: str,
    source: tuple[str, ...],
    keys: tuple[Path, ...],
    root: Path | None,
    arch: str | None,
    variant: str | None,
    out: Path,
    as_json: bool,
) -> None:
    """Download exactly the package asked for from a binhost, fully checked (its two
    published parts, joined into the package file as built); when the repo has no such
    package, say so and stop (never anything else)."""
    name_spec, spec_variant = split_spec(spec)
    client = Client(
        load_trusted(keys) + (trusted_keys(root) if root else []),
        serials_file(root),
        key_fix=f"pass --key PUB (the repo's package.pub), or --root ROOT holding it in ROOT/{TRUSTED_DIR}/",
        arch_fix="pass --arch",
        indexes=indexes_dir(root),
    )
    chosen_arch = arch or host_arch(client.arch_fix)
    chosen_variant = variant if variant is not None else spec_variant
    with render.progress():  # the download's bytes and rate, on a terminal
        at_hand = (root / ROOT_DOWNLOADS,) if root else ()  # parts an install into ROOT downloaded
        pkg = fetch_package(
            name_spec, list(source), chosen_arch, chosen_variant, out, client=client, at_hand=at_hand
        ).package
    if as_json:
        render.emit_json({"package": str(pkg), "size": pkg.stat().st_size, "serials": str(serials_file(root))})
        return
    render.out.print(f"{pkg} ({render.human_size(pkg.stat().st_size)}): index, size, sha256, manifest and signature OK")


COMMANDS: list[click.Command] = [repo, fetch]
