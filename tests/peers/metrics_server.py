"""A tiny loopback HTTP server serving exposition text a test can change at any time.

It stands in for an exporter's `/metrics` when a test needs to control exact
values (e.g. a heartbeat timestamp) that a real Prometheus then scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.util import serving


@dataclass
class MetricsServer:
    port: int
    text: Callable[[], str]
    requests: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def metrics_server(text: Callable[[], str]) -> Iterator[MetricsServer]:
    """Serve `text()` (called on every request) on 127.0.0.1 at a free port."""
    holder: list[MetricsServer] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            holder[0].requests.append(self.path)
            body = holder[0].text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(MetricsServer(int(httpd.server_address[1]), text))
    with serving(httpd):
        yield holder[0]
