"""GNU make's jobserver, served from Python: every make we start shares one pool of
tokens, so builds running side by side never use more than the cores given."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class JobServer:
    """GNU make's jobserver (a pipe of tokens). We hold the implicit token and hand one
    to each make we start; the makes take the others for their own parallel jobs."""

    def __init__(self, slots: int):
        self.slots = max(1, slots)
        self.read_fd, self.write_fd = os.pipe()
        os.write(self.write_fd, b"+" * (self.slots - 1))
        self._implicit = threading.Lock()

    def makeflags(self) -> str:
        return f"-j{self.slots} --jobserver-auth={self.read_fd},{self.write_fd}"

    def _take(self) -> bytes:
        while True:  # make may set the shared pipe non-blocking: wait for readability
            select.select([self.read_fd], [], [])
            try:
                return os.read(self.read_fd, 1)
            except BlockingIOError:
                continue

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self._implicit.acquire(blocking=False):
            try:
                yield
            finally:
                self._implicit.release()
            return
        token = self._take()
        try:
            yield
        finally:
            os.write(self.write_fd, token)

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


def default_cores() -> int:
    return len(os.sched_getaffinity(0))
