"""Helpers for the split-artifact tests: a small signed package with headers, a repo of
it, a plain HTTP server on 127.0.0.1 that records what clients ask for, and rewriting
an index or a part as a broken or malicious binhost would."""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from distkernel.build.package.format import canonical_json
from distkernel.build.package.writer import ZSTD_WORKERS, compression_params
from distkernel.build.trust.keys import PACKAGE_KEY, KeySet
from distkernel.build.trust.signing import signer
from distkernel.core.cache import sha256_file
from distkernel.workflows.repo.index import INDEX, add_packages, init_repo
from distkernel.workflows.repo.sign import sign_package
from tests.build.package.images import fake_image
from tests.target.install.helpers import fake_package

RELEASE = "6.1.0-fake"
KERNEL_PART = f"packages/fake-{RELEASE}-x86_64.tar.zst"
HEADERS_PART = f"packages/fake-{RELEASE}-x86_64.headers.tar.zst"


def signed_fake(out: Path, keys: KeySet, release: str = RELEASE, tag: bytes = b"") -> Path:
    """A signed package with kernel/, modules/ and headers/ (a symlink among them); TAG
    makes another package of the same names (another image, another manifest)."""
    pkg = fake_package(out, release, image=fake_image("x86_64", release, tag=tag) if tag else None)
    sign_package(pkg, keys.path(PACKAGE_KEY))
    return pkg


def fake_repo(top: Path, keys: KeySet) -> Path:
    repo = top / "repo"
    init_repo(repo, keys.path(PACKAGE_KEY))
    add_packages(repo, [signed_fake(top / "pkg", keys)])
    return repo


def rewrite_index(repo: Path, keys: KeySet, edit: Callable[[dict[str, Any]], None]) -> None:
    """EDIT the signed document's first entry, then sign it again with the repo's own key
    (a broken or malicious binhost: its key signs whatever it serves), serial + 1."""
    doc = json.loads((repo / INDEX).read_text())
    edit(doc["signed"]["packages"][0])
    doc["signed"]["serial"] += 1
    doc["signature"] = json.loads(signer(keys.path(PACKAGE_KEY))[0](canonical_json(doc["signed"])))
    (repo / INDEX).write_bytes(canonical_json(doc))


def point_entry(repo: Path, keys: KeySet, which: str, file: Path) -> None:
    """Make the index entry name FILE (copied to where the entry's part WHICH lives) with
    its own size and sha256: the bytes then match the signed index."""
    target = repo / (KERNEL_PART if which == "kernel" else HEADERS_PART)
    target.write_bytes(file.read_bytes())

    def edit(entry: dict[str, Any]) -> None:
        place = entry if which == "kernel" else entry["headers"]
        place["size"], place["sha256"] = target.stat().st_size, sha256_file(target)

    rewrite_index(repo, keys, edit)


def without_member(src: Path, dst: Path, name: str) -> Path:
    """SRC's stream written again without the member NAME (all else as it was)."""
    with (
        open(src, "rb") as f,
        tarfile.open(
            fileobj=zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), mode="r|"
        ) as tar_in,
        open(dst, "wb") as raw,
        zstandard.ZstdCompressor(compression_params=compression_params(ZSTD_WORKERS)).stream_writer(raw) as zw,
        tarfile.open(fileobj=zw, mode="w|", format=tarfile.GNU_FORMAT) as tar_out,
    ):
        for info in tar_in:
            data = tar_in.extractfile(info) if info.isfile() else None
            if info.name != name:
                tar_out.addfile(info, io.BytesIO(data.read()) if data is not None else None)
    return dst


class _Recording(http.server.SimpleHTTPRequestHandler):
    asked: list[str]

    def do_GET(self) -> None:
        self.asked.append(self.path.lstrip("/"))
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Recording:
    """A static file server on 127.0.0.1 that records the path of every GET."""

    def __init__(self, folder: Path) -> None:
        self.asked: list[str] = []
        handler = type("Handler", (_Recording,), {"asked": self.asked})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=folder))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Recording:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
