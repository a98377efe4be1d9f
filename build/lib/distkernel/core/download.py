"""The one downloader: stream a URL into a file (or memory) while hashing it, never
more than a size limit, and within an overall deadline. A server that sends one byte
now and then is cut off when the deadline passes, whatever phase it is in: a watchdog
shuts the connection's socket down, which wakes a blocked read."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from distkernel.core.errors import UserError
from distkernel.core.progress import transfer

CHUNK = 1 << 20
DEADLINE_ENV = "DISTKERNEL_DOWNLOAD_DEADLINE"  # seconds, overrides every computed deadline
BASE_SECONDS = 60.0  # connecting and the first bytes
MIN_RATE = 128 << 10  # bytes per second a download must average on top of that


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str


def deadline_for(expected_size: int = 0) -> float:
    """Seconds a download of about `expected_size` bytes may take: $DISTKERNEL_DOWNLOAD_DEADLINE
    when set, else a minute plus the time to move the bytes at a slow rate."""
    raw = os.environ.get(DEADLINE_ENV)
    if raw is None or raw == "":
        return BASE_SECONDS + expected_size / MIN_RATE
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 1e7:
        raise UserError(f"${DEADLINE_ENV}={raw!r}: not a number of seconds; set a positive number or unset it")
    return seconds


class _Watch:
    """Shuts down the registered sockets when the deadline passes (unless stopped first)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket (whose own shutdown would tear
    # down its TLS state under the reading thread): the reader sees end-of-file.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _opener(watch: _Watch) -> urllib.request.OpenerDirector:
    def watched(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Connection(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                super().connect()  # each step bounded by the socket timeout
                watch.add(self.sock)

        return Connection

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(watched(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(watched(http.client.HTTPSConnection), req)

    return urllib.request.build_opener(Http(), Https())


def download_to(url: str, sink: BinaryIO, *, limit: int, deadline: float, hint: str, where: str = "") -> Downloaded:
    """Copy URL into `sink` while hashing it; a UserError (starting with `where`, ending
    in `hint`, the fix) when it cannot be fetched, is larger than `limit` bytes, or
    takes over `deadline` seconds."""
    watch = _Watch(deadline)
    h = hashlib.sha256()
    got = 0
    report = transfer(os.path.basename(urllib.parse.urlsplit(url).path) or url)
    watch.start()
    try:
        with _opener(watch).open(url, timeout=deadline) as response:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            try:
                while got <= limit and (chunk := _read(response, min(CHUNK, limit + 1 - got))):
                    got += len(chunk)
                    h.update(chunk)
                    sink.write(chunk)
                    report(got, total)
            finally:
                watch.stop()  # before the response closes its socket
    except urllib.error.HTTPError as e:
        raise UserError(f"{where}cannot download {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        # A socket timeout is the deadline too: every socket waits at most that long.
        timed_out = isinstance(reason, TimeoutError) or isinstance(e, TimeoutError)
        if not (watch.expired or timed_out):
            raise UserError(f"{where}cannot download {url}: {reason}; {hint}") from None
        watch.expired = True
    finally:
        watch.stop()
    if watch.expired:
        raise UserError(
            f"{where}{url}: not downloaded within {watch.seconds:g} s (a stalled or very slow server; "
            f"{got} bytes arrived); try again later or raise ${DEADLINE_ENV}"
        )
    if got > limit:
        raise UserError(f"{where}{url}: larger than {limit} bytes; refusing it")
    return Downloaded(got, h.hexdigest())


def _read(response: Any, size: int) -> bytes:
    # read1: at most one read from the socket, so progress is seen chunk by chunk.
    data: bytes = response.read1(size) if hasattr(response, "read1") else response.read(size)
    return data


def download_bytes(url: str, *, limit: int, deadline: float, hint: str, where: str = "") -> bytes:
    sink = io.BytesIO()
    download_to(url, sink, limit=limit, deadline=deadline, hint=hint, where=where)
    return sink.getvalue()


def download_file(url: str, part: Path, *, limit: int, deadline: float, hint: str, where: str = "") -> Downloaded:
    """Into `part` (created or truncated, fsync'ed); the caller renames or removes it."""
    with open(part, "wb") as f:
        got = download_to(url, f, limit=limit, deadline=deadline, hint=hint, where=where)
        f.flush()
        os.fsync(f.fileno())
    return got
