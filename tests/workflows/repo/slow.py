"""A real HTTP server on 127.0.0.1 (a port the system picks) that serves a folder, but
sends chosen paths one byte at a time, a few seconds apart: the stalled server every
download must give up on. It stops dribbling after `give_up` seconds so that a test
of code without a deadline ends (and fails) instead of hanging."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any


class _Handler(http.server.SimpleHTTPRequestHandler):
    slow: dict[str, str]  # path -> "body" or "headers"
    stop: threading.Event
    every: float
    give_up: float

    def do_GET(self) -> None:
        path = self.path.lstrip("/")
        mode = self.slow.get(path)
        if mode is None:
            super().do_GET()
            return
        file = Path(self.directory) / path
        data = file.read_bytes() if file.is_file() else b"x" * 4096
        if mode == "headers":
            trickle = b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 100
            self._trickle(trickle)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._trickle(data)

    def _trickle(self, data: bytes) -> None:
        waited = 0.0
        for i in range(len(data)):
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return  # the client gave up: what it should do
            if self.stop.wait(self.every):
                return
            waited += self.every
            if waited >= self.give_up:
                return

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SlowServer:
    def __init__(self, folder: Path, slow: dict[str, str], every: float = 5.0, give_up: float = 40.0):
        self.stop = threading.Event()
        attrs = {"slow": slow, "stop": self.stop, "every": every, "give_up": give_up}
        handler = type("Handler", (_Handler,), attrs)
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> SlowServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
