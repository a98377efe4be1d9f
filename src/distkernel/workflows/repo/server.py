"""`distkernel repo serve`: a plain HTTP server over the repo folder that serves the
index and the package files and nothing else (not the repo's settings, no listings).
The index carries an ETag made from its content, and only that validator: a
Last-Modified date has one-second steps, and an index replaced within the same second
would be answered with a 304 for the wrong content."""

from __future__ import annotations

import functools
import hashlib
import http.server
from collections.abc import Callable
from pathlib import Path

from distkernel.core.errors import UserError
from distkernel.workflows.repo.index import INDEX, path_problem


class _Handler(http.server.SimpleHTTPRequestHandler):
    def _allowed(self) -> bool:
        path = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
        return path == INDEX or path_problem(path) is None

    def do_GET(self) -> None:
        if not self._allowed():
            self.send_error(404)
            return
        if self.path.split("?", 1)[0].lstrip("/") == INDEX:
            self._index()
            return
        super().do_GET()

    def _index(self) -> None:
        try:
            data = (Path(self.directory) / INDEX).read_bytes()
        except OSError:
            self.send_error(404)
            return
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        if etag in (self.headers.get("If-None-Match") or "").replace(" ", "").split(","):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        if not self._allowed():
            self.send_error(404)
            return
        super().do_HEAD()

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(repo: Path, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    if not (repo / INDEX).is_file():
        raise UserError(f"{repo}: no {INDEX}; create the repo with `distkernel repo init {repo} --key KEY`")
    handler: Callable[..., _Handler] = functools.partial(_Handler, directory=str(repo))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); pick another port") from None
