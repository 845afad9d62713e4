"""Socket helpers shared by the server-limit tests and benchmarks/http_servers.py."""

from __future__ import annotations

import socket


def hung_up(sock: socket.socket) -> bool:
    """True when the server has closed `sock` (without waiting)."""
    sock.setblocking(False)  # a socket with a timeout would wait despite MSG_DONTWAIT
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
