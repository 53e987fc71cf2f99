"""A loopback stand-in for an Alertmanager-compatible receiver that records what it gets.

Used where the test needs to see raw requests (headers, batches) or to make the receiver
fail on purpose; the real Alertmanager (tests/peers/alertmanager.py) is used to check that
alerts are accepted and resolved. A view over tests/peers/http_receiver.py's `HttpReceiver`:
any path is accepted and `url` is the bare origin, as clients append /api/v2/alerts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tests.peers.http_receiver import HttpReceiver, Reply


class AlertReceiver(HttpReceiver):
    def __init__(self, status: int = 200, port: int = 0) -> None:
        super().__init__(port=port, success=Reply(status, ""))

    @property
    def posts(self) -> list[tuple[str, Mapping[str, str], Any]]:
        """(path, headers, JSON body) of every POST, whatever it was answered."""
        return [(r.path, r.headers, r.json()) for r in self.requests()]

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, in order."""
        return [a for _, _, body in self.posts for a in body]


@contextmanager
def alert_receiver(status: int = 200, port: int = 0) -> Iterator[AlertReceiver]:
    """Serve POST /api/v2/alerts on 127.0.0.1 (`port` 0 = any free port)."""
    with AlertReceiver(status, port) as receiver:
        yield receiver
