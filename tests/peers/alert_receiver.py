"""A loopback stand-in for an Alertmanager-compatible receiver that records what it gets.

Used where the test needs to see raw requests (headers, batches) or to make
the receiver fail on purpose; the real Alertmanager (tests/peers/alertmanager.py)
is used to check that alerts are accepted and resolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.util import serving


@dataclass
class AlertReceiver:
    url: str
    status: int = 200  # what POST /api/v2/alerts answers
    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, in order."""
        return [a for _, _, body in self.posts for a in body]


@contextmanager
def alert_receiver(status: int = 200, port: int = 0) -> Iterator[AlertReceiver]:
    """Serve POST /api/v2/alerts on 127.0.0.1 (`port` 0 = any free port)."""
    holder: list[AlertReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            receiver = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.posts.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    holder.append(AlertReceiver(f"http://127.0.0.1:{httpd.server_address[1]}", status))
    with serving(httpd):
        yield holder[0]
