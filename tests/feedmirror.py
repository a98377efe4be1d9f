"""A kernel.org-style mirror made by a test: tarballs of a tiny kernel tree, a clearsigned
sha256sums.asc per folder and a detached signature per tarball (signed with a key gpg
makes for the test), a releases.json, served over HTTP on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import lzma
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import make_fake_tree


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    env = {**os.environ, "GNUPGHOME": str(home)}
    done = subprocess.run(["gpg", "--batch", "--yes", "--quiet", *args], input=data, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def make_key(home: Path, who: str) -> Path:
    """A fresh signing key in HOME; returns its exported (binary) keyring file."""
    home.mkdir(mode=0o700, parents=True)
    _gpg(home, "--passphrase", "", "--quick-gen-key", f"{who} <{who}@test.invalid>", "ed25519", "sign", "never")
    keyring = home.parent / f"{who}.gpg"
    keyring.write_bytes(_gpg(home, "--export"))
    return keyring


class Mirror:
    def __init__(self, root: Path, home: Path):
        self.root = root
        self.home = home  # the signing key's gpg home
        self.folder = root / "pub" / "linux" / "kernel" / "v6.x"
        self.folder.mkdir(parents=True)
        self.url = ""
        self.versions: list[str] = []

    def tarball(self, version: str) -> Path:
        return self.folder / f"linux-{version}.tar.xz"

    def tarball_url(self, version: str) -> str:
        return f"{self.url}/pub/linux/kernel/v6.x/linux-{version}.tar.xz"

    def add(self, version: str, work: Path) -> str:
        """Publish linux-VERSION (a tiny tree whose Makefile says VERSION); returns its sha256."""
        sub = version.split(".")[2]
        tree = make_fake_tree(work / f"tree-{version}" / f"linux-{version}", sublevel=int(sub))
        tar = work / f"linux-{version}.tar"
        with tarfile.open(tar, "w") as t:
            t.add(tree, arcname=f"linux-{version}")
        raw = tar.read_bytes()
        self.tarball(version).write_bytes(lzma.compress(raw))
        sig = _gpg(self.home, "--detach-sign", "--armor", "-o", "-", str(tar))
        (self.folder / f"linux-{version}.tar.sign").write_bytes(sig)
        self.versions.append(version)
        self.resign()
        return hashlib.sha256(self.tarball(version).read_bytes()).hexdigest()

    def sums_text(self) -> str:
        lines = [
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}"
            for p in sorted(self.folder.iterdir())
            if p.name != "sha256sums.asc"
        ]
        return "\n".join(lines) + "\n"

    def resign(self, home: Path | None = None) -> None:
        text = self.sums_text().encode()
        (self.folder / "sha256sums.asc").write_bytes(_gpg(home or self.home, "--clearsign", "-o", "-", data=text))
        self.write_releases()

    def write_releases(self) -> None:
        newest: dict[str, str] = {}
        for v in self.versions:
            series = ".".join(v.split(".")[:2])
            if series not in newest or tuple(map(int, v.split("."))) > tuple(map(int, newest[series].split("."))):
                newest[series] = v
        releases = [
            {"moniker": "longterm", "version": v, "source": self.tarball_url(v), "iseol": False}
            for v in sorted(newest.values(), reverse=True)
        ]
        (self.root / "releases.json").write_text(json.dumps({"releases": releases}, indent=1))

    @property
    def feed(self) -> str:
        return f"{self.url}/releases.json"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(mirror: Mirror) -> Iterator[Mirror]:
    handler = functools.partial(_Quiet, directory=str(mirror.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_recipe(path: Path, mirror: Mirror, version: str, sha256: str, keyring: Path, extra: str = "") -> Path:
    path.write_text(
        "# a recipe following the mirror's 6.x feed\n"
        f'[kernel]\nname = "{path.stem}"\n'
        f'source = "url:{mirror.tarball_url(version)}"  # the tarball\n'
        f'sha256 = "{sha256}"\nversion = "{version}"\nfeed = "{mirror.feed}"\nkeyring = "{keyring}"\n{extra}'
        '\n[config]\nbase = "tinyconfig"\n'
    )
    return path
