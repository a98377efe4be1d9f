"""The one downloader: stream a URL into a file (or memory) while hashing it, never
more than a size limit, and within an overall deadline. A server that sends one byte
now and then is cut off when the deadline passes, whatever phase it is in: a watchdog
shuts the connection's socket down, which wakes a blocked read.

A request may be conditional (If-None-Match / If-Modified-Since: a 304 is an answer,
not an error) and a file download that the connection cuts is resumed where it broke
off with a Range request, its hash taken over the whole file at the end."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import re
import socket
import sys
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


RESUMES = 4  # Range requests after a cut connection, each only when the one before made progress
CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")


class DownloadError(UserError):
    """The server could not be reached, refused, stalled or cut the transfer: another
    mirror may do better (unlike content that is wrong, which never gets that far)."""


class Stalled(DownloadError):
    """Not done within the deadline: resuming would only extend it."""


@dataclass(frozen=True)
class Downloaded:
    size: int  # bytes of this response's body
    sha256: str  # of those bytes
    status: int = 200  # 200, 206 (a range), 304 (not modified: no body)
    etag: str = ""
    last_modified: str = ""
    complete: bool = True  # False: the connection ended before Content-Length bytes


def warn(message: str) -> None:
    """One line on stderr: something went wrong and was worked around."""
    print(f"distkernel: warning: {message}", file=sys.stderr, flush=True)


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


def download_to(
    url: str,
    sink: BinaryIO,
    *,
    limit: int,
    deadline: float,
    hint: str,
    where: str = "",
    headers: dict[str, str] | None = None,
    offset: int = 0,
) -> Downloaded:
    """Copy URL into `sink` while hashing it; a DownloadError (starting with `where`,
    ending in `hint`, the fix) when it cannot be fetched or takes over `deadline`
    seconds, a UserError when it is larger than `limit` bytes. With `offset`, ask for
    the bytes from there on (Range); a server that answers with the whole file instead
    has the sink rewound to its start, and `limit` counts from where the body starts."""
    watch = _Watch(deadline)
    h = hashlib.sha256()
    got = 0
    report = transfer(os.path.basename(urllib.parse.urlsplit(url).path) or url)
    status, etag, modified, total = 200, "", "", None
    watch.start()
    try:
        request = urllib.request.Request(url, headers=dict(headers or {}))  # ValueError: not a URL
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        with _opener(watch).open(request, timeout=deadline) as response:
            status = response.status
            etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
            start = _start(url, response.headers.get("Content-Range", ""), offset, where) if status == 206 else 0
            if offset and start == 0:
                sink.seek(0)
                sink.truncate()
            limit -= start
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
        if e.code == 304 and headers and ("If-None-Match" in headers or "If-Modified-Since" in headers):
            return Downloaded(0, h.hexdigest(), 304, e.headers.get("ETag", ""), e.headers.get("Last-Modified", ""))
        raise DownloadError(f"{where}cannot download {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        # A socket timeout is the deadline too: every socket waits at most that long.
        timed_out = isinstance(reason, TimeoutError) or isinstance(e, TimeoutError)
        if not (watch.expired or timed_out):
            after = f" (after {got} bytes)" if got else ""
            raise DownloadError(f"{where}cannot download {url}: {reason}{after}; {hint}") from None
        watch.expired = True
    finally:
        watch.stop()
    if watch.expired:
        raise Stalled(
            f"{where}{url}: not downloaded within {watch.seconds:g} s (a stalled or very slow server; "
            f"{got} bytes arrived); try again later or raise ${DEADLINE_ENV}"
        )
    if got > limit:
        raise UserError(f"{where}{url}: larger than {limit} bytes; refusing it")
    complete = total is None or got >= total
    return Downloaded(got, h.hexdigest(), status, etag, modified, complete)


def _start(url: str, content_range: str, offset: int, where: str) -> int:
    """Where a 206's body starts: exactly where it was asked to, or the answer is wrong."""
    m = CONTENT_RANGE_RE.match(content_range.strip())
    if not m or int(m.group(1)) != offset:
        raise DownloadError(f"{where}{url}: asked for bytes from {offset}, got the range {content_range!r}")
    return offset


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


def download_resumable(url: str, part: Path, *, size: int, deadline: float, hint: str, where: str = "") -> Downloaded:
    """Into `part` (created or truncated, fsync'ed), at most `size` bytes: when the
    connection is cut after some bytes arrived, the rest is asked for with a Range
    request (each resume only after progress, at most RESUMES of them). The sha256 is
    of the whole file as it ends up, read back from the disk."""
    with open(part, "w+b") as f:
        have = resumes = 0
        while True:
            error: DownloadError | None = None
            try:
                got = download_to(url, f, limit=size, deadline=deadline, hint=hint, where=where, offset=have)
                if got.complete:
                    break  # whatever its size: the caller compares it with what it expected
                why = "the connection closed early"
            except Stalled:
                raise
            except DownloadError as e:
                error, why = e, e.message
            now = f.seek(0, os.SEEK_END)
            if now <= have or now >= size or resumes == RESUMES:
                if error is not None:
                    raise error
                break
            resumes += 1
            warn(f"{url}: cut after {now} of {size} bytes ({why}); resuming with a range request")
            have = now
        f.flush()
        os.fsync(f.fileno())
        f.seek(0)
        h = hashlib.sha256()
        total = 0
        while block := f.read(CHUNK):
            total += len(block)
            h.update(block)
    return Downloaded(total, h.hexdigest())
