"""The downloader against real HTTP servers on 127.0.0.1: a conditional request's 304
is an answer, a cut transfer is resumed with a Range request (or restarted when the
server ignores ranges), and a 206 for the wrong range is refused."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from distkernel.core.download import DownloadError, download_resumable, download_to

BODY = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves BODY; `mode` decides how: cut the first answer, ignore Range, or lie about it."""

    mode = "cut"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        rng = self.headers.get("Range", "")
        self.seen.append(rng)
        etag = '"v1"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        start = int(rng.removeprefix("bytes=").removesuffix("-")) if rng and self.mode != "ignore" else 0
        if self.mode == "lie" and rng:
            start += 1
        self.send_response(206 if rng and self.mode != "ignore" else 200)
        if rng and self.mode != "ignore":
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        body = BODY[start:]
        if len(self.seen) == 1:  # the first answer is cut a third of the way in
            body = body[: len(BODY) // 3]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(mode: str) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("H", (Handler,), {"mode": mode, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/f", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_cut_download_is_resumed_with_a_range_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving("cut") as (url, seen):
        got = download_resumable(url, tmp_path / "f", size=len(BODY), deadline=60, hint="")
    assert seen == ["", f"bytes={len(BODY) // 3}-"]
    assert got.size == len(BODY) and got.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (tmp_path / "f").read_bytes() == BODY
    assert "resuming with a range request" in capsys.readouterr().err


def test_a_server_that_ignores_the_range_restarts_the_file(tmp_path: Path) -> None:
    with serving("ignore") as (url, seen):
        got = download_resumable(url, tmp_path / "f", size=len(BODY), deadline=60, hint="")
    assert len(seen) == 2 and got.sha256 == hashlib.sha256(BODY).hexdigest()


def test_a_206_for_the_wrong_range_is_refused(tmp_path: Path) -> None:
    with serving("lie") as (url, _), pytest.raises(DownloadError, match="asked for bytes from"):
        download_resumable(url, tmp_path / "f", size=len(BODY), deadline=60, hint="")


def test_a_304_is_an_answer_with_no_body() -> None:
    with serving("cut") as (url, _):
        got = download_to(url, io.BytesIO(), limit=10, deadline=60, hint="", headers={"If-None-Match": '"v1"'})
    assert (got.status, got.size, got.etag) == (304, 0, '"v1"')
