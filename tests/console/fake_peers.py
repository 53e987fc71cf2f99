"""A small fake rule-engine API (and exporter /sd) on loopback, for console tests.

The exporter's fleet API (server actions) is faked by tests/console/fake_exporter.py.

The real rule engine needs a warmed Prometheus and cycles of its own to reach a state;
the console only reads its JSON, so tests set that JSON directly and change it live.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class FakePeers:
    """servers: name -> the rule engine's server view; labels: name -> inventory labels."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.prometheus = False  # also answer /api/v1/query (bench: no real Prometheus)
        self.url = ""

    def set(self, name: str, status: str, **fields: Any) -> None:
        view = {
            "status": status,
            "since": None,
            "reason": None,
            "reason_text": None,
            "last_error": None,
            "health": {"color": "green", "score": 95.0, "worst": "cpu", "components": {}},
            "anomalies": {},
        }
        view.update(fields)
        self.servers[name] = view

    def body(self, path: str) -> tuple[int, Any]:
        if path == "/api/v1/servers":
            return 200, {
                "time": 0,
                "ok": True,
                "pipeline": {"statuses_unknown": False},
                "servers": dict(self.servers),
            }
        if path.startswith("/api/v1/servers/"):
            name = unquote(path.removeprefix("/api/v1/servers/"))
            if name not in self.servers:
                return 404, {"error": f"unknown server: {name}"}
            return 200, {
                "server": name,
                **self.servers[name],
                "history": self.history.get(name, []),
            }
        if path == "/api/v1/query" and self.prometheus:
            # A Prometheus stand-in for the benchmark: one sample per server for any query.
            return 200, {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"server": n}, "value": [0, str(0.25 + (i % 70) / 100)]}
                        for i, n in enumerate(self.servers)
                    ],
                },
            }
        if path == "/sd":
            return 200, [
                {"targets": [n], "labels": {**self.labels.get(n, {}), "server": n}}
                for n in self.servers
            ]
        return 404, {"error": "not found"}


@contextmanager
def fake_peers() -> Iterator[FakePeers]:
    peers = FakePeers()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            code, obj = peers.body(url.path)
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    peers.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield peers
    finally:
        server.shutdown()
        server.server_close()
