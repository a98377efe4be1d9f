"""One forwarded connection of the guest to a server on this machine: qemu's user-mode
network (guestfwd=...-cmd:) starts this per connection with the guest's side of the
connection as stdin and stdout; it is joined to HOST:PORT until either side closes.

    python -m distkernel.workflows.realsys.bridge HOST PORT
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _to_server(sock: socket.socket) -> None:
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def main(argv: list[str]) -> int:
    host, port = argv[0], int(argv[1])
    with socket.create_connection((host, port), timeout=60) as sock:
        threading.Thread(target=_to_server, args=(sock,), daemon=True).start()
        while data := sock.recv(65536):
            os.write(1, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
