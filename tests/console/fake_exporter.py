"""A fake exporter fleet API (`/api/v1/servers`) on loopback, recording what the console sends.

It answers like exporter/fleet_api.py: a list of server views, 201 on add, 400 with one
`error` line for a bad field, 401 without the right bearer token (when `token` is set),
404 for an unknown server. `fail_with` makes every write answer that status with a body
that is not JSON, as a proxy or a crashing exporter would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

PREFIX = "/api/v1/servers"


@dataclass
class Request:
    method: str
    path: str
    query: str
    authorization: str
    body: Any


@dataclass
class FakeExporter:
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str = ""  # "" = every write accepted
    fail_with: int = 0
    test_result: dict[str, Any] = field(default_factory=lambda: {
        "success": True, "duration_seconds": 0.42, "reason": None, "message": None,
        "summary": ["cpu 12%", "memory 40%"]})
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    sd_from: Any = None  # a FakePeers whose /sd (inventory labels) this exporter serves

    def add_server(self, name: str, **fields: Any) -> None:
        self.servers[name] = {"name": name, "mode": "ssh", "host": "10.0.0.5", "port": 22,
                              "labels": {}, "suspended": False, "status": "online",
                              "message": None, **fields}

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def handle(self, req: Request) -> tuple[int, Any]:
        if req.path == "/sd" and self.sd_from is not None:
            result: tuple[int, Any] = self.sd_from.body("/sd")
            return result
        if not req.path.startswith(PREFIX):
            return 404, {"error": "not found"}
        parts = [unquote(p) for p in req.path[len(PREFIX):].strip("/").split("/") if p]
        if req.method == "GET":
            if not parts:
                return 200, {"servers": list(self.servers.values())}
            if parts[0] in self.servers:
                return 200, self.servers[parts[0]]
            return 404, {"error": f"unknown server {parts[0]!r}"}
        if self.token and req.authorization != f"Bearer {self.token}":
            return 401, {"error": "server changes need a valid bearer token"}
        if self.fail_with:
            return self.fail_with, "<html>Internal Server Error</html>"
        if req.method == "POST" and not parts:
            body = req.body if isinstance(req.body, dict) else {}
            port = body.get("port", 22)
            if isinstance(port, str) and not port.isdigit():
                return 400, {"error": f"port: expected 1-65535, got {port!r}"}
            if body.get("name") in self.servers:
                return 200, {"server": body["name"], "result": "unchanged"}
            self.add_server(str(body.get("name")), host=body.get("host"),
                            port=int(port), labels=body.get("labels", {}),
                            mode=body.get("mode", "ssh"))
            return 201, {"server": body.get("name"), "result": "added"}
        if not parts or parts[0] not in self.servers:
            return 404, {"error": f"no server named {parts[0] if parts else ''!r} in the "
                                  f"inventory"}
        name = parts[0]
        if req.method == "DELETE" and len(parts) == 1:
            del self.servers[name]
            return 200, {"server": name, "result": "removed"}
        if req.method == "POST" and len(parts) == 2 and parts[1] in ("suspend", "resume"):
            self.servers[name]["suspended"] = parts[1] == "suspend"
            return 200, {"server": name, "result": parts[1] + ("ed" if parts[1] == "suspend"
                                                                  else "d")}
        if req.method == "POST" and len(parts) == 2 and parts[1] == "test":
            return 200, {"server": name, **self.test_result}
        return 404, {"error": "not found"}


@contextmanager
def fake_exporter() -> Iterator[FakeExporter]:
    fake = FakeExporter()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            req = Request(self.command, url.path, url.query,
                          self.headers.get("Authorization", ""), body)
            fake.requests.append(req)
            code, obj = fake.handle(req)
            data = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html" if isinstance(obj, str)
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
