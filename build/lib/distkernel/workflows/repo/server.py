"""`distkernel repo serve`: a plain HTTP server over the repo folder that serves the
index and the package files and nothing else (not the repo's settings, no listings)."""

from __future__ import annotations

import functools
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
        super().do_GET()

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
