"""A total deadline for one send: a timer shuts the send's sockets down when it passes.

Socket timeouts apply to each read, so a peer that trickles a byte every few seconds
never trips them; shutting the socket down makes the blocked read return at once.
"""

from __future__ import annotations

import socket
import threading
from typing import Any


class Watchdog:
    """Shuts down the `.sock` of every watched connection once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.conns: list[Any] = []
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def watch(self, conn: Any) -> Any:
        """Watch an object with a `.sock` (read when the deadline passes); returns it."""
        self.conns.append(conn)
        if self.fired:
            self._shutdown(conn)
        return conn

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        for conn in list(self.conns):
            self._shutdown(conn)

    @staticmethod
    def _shutdown(conn: Any) -> None:
        sock = getattr(conn, "sock", None)
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
