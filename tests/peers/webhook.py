"""A loopback HTTP receiver that records webhook deliveries (Alertmanager v4 payloads).

It can answer with an error status or be stopped and restarted on the same port, to play a
receiver that is down for a while.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.util import free_port


@dataclass
class WebhookReceiver:
    port: int
    path: str = "/hook"
    status: int = 200  # what to answer; set to 503 to play a failing receiver
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.status == 200:
                    with receiver.lock:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: the router then sees connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every delivery, in arrival order."""
        with self.lock:
            return [a for payload in self.received for a in payload["alerts"]]


@contextmanager
def webhook_receiver(port: int | None = None) -> Iterator[WebhookReceiver]:
    """A running receiver on a free loopback port."""
    receiver = WebhookReceiver(port or free_port())
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
