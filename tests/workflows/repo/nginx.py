"""Real servers for the binhost tests: Debian's nginx on 127.0.0.1 with its own config,
pid, logs and temp folders under the test's tmp folder (started and stopped by the
test), and a TCP relay in front of it that cuts the first package response mid-body."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"
LOG_FORMAT = (
    '$request_method $uri $status $body_bytes_sent range="$http_range" '
    'inm="$http_if_none_match" ims="$http_if_modified_since"'
)

CONFIG = """\
daemon off;
master_process on;
worker_processes 2;
{user}
pid {run}/nginx.pid;
error_log {run}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format binhost '{fmt}';
    access_log {run}/access.log binhost;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    types {{ application/json json; application/zstd zst; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        autoindex off;
        location ~ /\\. {{ return 404; }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    url: str  # the document root's URL, ending in '/'
    run: Path  # config, pid and logs

    def log(self) -> list[str]:
        return (self.run / "access.log").read_text().splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _up(port: int, proc: subprocess.Popen[bytes], seconds: float = 20.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def nginx(www: Path, run: Path) -> Iterator[Nginx]:
    """nginx serving WWW as static files until the block ends."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (Debian package nginx-light; ./bootstrap installs it)")
    run.mkdir(parents=True, exist_ok=True)
    # As root, nginx's workers would run as nobody, who cannot enter pytest's 0700 tmp folders.
    user = "user root;" if os.geteuid() == 0 else ""
    for _attempt in range(3):  # a free port may be taken before nginx binds it
        port = free_port()
        conf = run / "nginx.conf"
        conf.write_text(CONFIG.format(user=user, run=run, fmt=LOG_FORMAT, port=port, www=www))
        proc = subprocess.Popen(
            [NGINX, "-p", str(run), "-c", str(conf), "-e", str(run / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _up(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"nginx did not start: {(run / 'error.log').read_text()[-2000:]}")
    try:
        yield Nginx(f"http://127.0.0.1:{port}/", run)
    finally:
        proc.terminate()  # SIGTERM: the master stops its workers and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the connection is refused)."""
    return f"http://127.0.0.1:{free_port()}/"


class CuttingRelay:
    """Relays TCP to nginx; the first response to a request for packages/ is cut after
    `keep` bytes (headers and part of the body), as a dropped connection would."""

    def __init__(self, port: int, keep: int):
        self.target, self.keep = port, keep
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # close() alone does not wake a thread blocked in accept(): the socket would keep
        # listening after the test, and a later test's server could be handed its port
        # (a client of that server then reached this relay and was reset).
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.target)) as upstream:
            request = client.recv(65536)
            with self._lock:
                cut = b"/packages/" in request.split(b"\r\n", 1)[0] and self.cuts == 0
                self.cuts += cut
            upstream.sendall(request)
            sent = 0
            while chunk := upstream.recv(65536):
                if cut and sent + len(chunk) >= self.keep:
                    client.sendall(chunk[: self.keep - sent])
                    client.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
                    return
                client.sendall(chunk)
                sent += len(chunk)


def copy_repo(repo: Path, to: Path) -> Path:
    shutil.copytree(repo, to)
    return to
