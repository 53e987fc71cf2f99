"""A loopback stand-in for the StackSense services, as Prometheus sees them.

It answers the exporter's `/sd`, `/probe` and `/metrics` and the router's
`/api/v2/alerts` in the formats of the contracts, and records every request so
a test can check what a real Prometheus, configured by our files, asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.peers.util import free_port, serving

PROBE_BODY = """# TYPE stacksense_probe_success gauge
stacksense_probe_success 1
# TYPE stacksense_probe_duration_seconds gauge
stacksense_probe_duration_seconds 0.042
# TYPE node_load1 gauge
node_load1 0.5
"""


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeStack:
    url: str
    port: int
    servers: list[str]
    seen: list[Seen] = field(default_factory=list)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in list(self.seen) if s.path == path]


def _handler(stack: FakeStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _record(self) -> Seen:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            stack.seen.append(seen)
            return seen

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            seen = self._record()
            if seen.path == "/sd":
                groups = [
                    {"targets": [s], "labels": {"server": s, "env": "test"}} for s in stack.servers
                ]
                self._send(200, json.dumps(groups), "application/json")
            elif seen.path == "/probe" and seen.query.get("target", [""])[0] in stack.servers:
                self._send(200, PROBE_BODY, "text/plain; version=0.0.4")
            elif seen.path == "/metrics":
                self._send(
                    200,
                    "# TYPE stacksense_exporter_config_last_reload_successful gauge\n"
                    "stacksense_exporter_config_last_reload_successful 1\n",
                    "text/plain; version=0.0.4",
                )
            else:
                self._send(404, "not found\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            seen = self._record()
            if seen.path == "/api/v2/alerts":
                self._send(200, "", "application/json")
            else:
                self._send(404, "not found\n", "text/plain")

    return Handler


@contextmanager
def fake_stack(servers: list[str]) -> Iterator[FakeStack]:
    """Serve the fake on a free loopback port in a thread."""
    port = free_port()
    stack = FakeStack(f"http://127.0.0.1:{port}", port, servers)
    with serving(ThreadingHTTPServer(("127.0.0.1", port), _handler(stack))):
        yield stack
