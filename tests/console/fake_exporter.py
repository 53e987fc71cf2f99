"""A fake exporter fleet API (`/api/v1/servers`) on loopback, recording what the console sends.

It answers like exporter/fleet_api.py: a list of server views, 201 on add, 400 with one
`error` line for a bad field, 401 without the right bearer token (when `token` is set),
404 for an unknown server. `fail_with` makes every write answer that status with a body
that is not JSON, as a proxy or a crashing exporter would.

`POST /api/v1/diagnose/<server>` answers `diagnose_report` (with the server's name) for a
known server, like exporter/diagnose_api.py; `diagnose_fail` makes it answer that status
with a body that is not JSON, `diagnose_delay` holds the answer back (until the fake stops).
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
DIAGNOSE = "/api/v1/diagnose/"


def diagnose_report() -> dict[str, Any]:
    """A report shaped like the exporter's: a full disk and a large process."""
    return {
        "at": 0,
        "duration_seconds": 1.25,
        "complete": True,
        "error": None,
        "cached": False,
        "sections": {"disk": "ok", "memory": "ok", "ps_memory": "ok", "units": "ok"},
        "timed_out": [],
        "findings": [
            {
                "text": "/var is 96 % full: largest directories /var/log/app (3.1 GiB)",
                "action": "look at /var/log/app first (rotate or remove old files)",
                "evidence": ["/dev/sda1 /var 96 %", "3.1 GiB /var/log/app"],
                "kind": "disk",
            },
            {
                "text": "memory is 93 % used: the top 3 processes hold 70 % of it",
                "action": "look at java (pid 4242) first, it holds 55 %",
                "evidence": ["java pid 4242 rss 7.1 GiB"],
                "kind": "memory",
            },
        ],
    }


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
    test_result: dict[str, Any] = field(
        default_factory=lambda: {
            "success": True,
            "duration_seconds": 0.42,
            "reason": None,
            "message": None,
            "summary": ["cpu 12%", "memory 40%"],
        }
    )
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    sd_from: Any = None  # a FakePeers whose /sd (inventory labels) this exporter serves
    diagnose_report: dict[str, Any] = field(default_factory=diagnose_report)
    diagnose_fail: int = 0
    diagnose_delay: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)

    def add_server(self, name: str, **fields: Any) -> None:
        self.servers[name] = {
            "name": name,
            "mode": "ssh",
            "host": "10.0.0.5",
            "port": 22,
            "labels": {},
            "suspended": False,
            "status": "online",
            "message": None,
            **fields,
        }

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def handle(self, req: Request) -> tuple[int, Any]:
        if req.path == "/sd" and self.sd_from is not None:
            result: tuple[int, Any] = self.sd_from.body("/sd")
            return result
        if req.path.startswith(DIAGNOSE):
            return self.diagnose(req)
        if not req.path.startswith(PREFIX):
            return 404, {"error": "not found"}
        parts = [unquote(p) for p in req.path[len(PREFIX) :].strip("/").split("/") if p]
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
            self.add_server(
                str(body.get("name")),
                host=body.get("host"),
                port=int(port),
                labels=body.get("labels", {}),
                mode=body.get("mode", "ssh"),
            )
            return 201, {"server": body.get("name"), "result": "added"}
        if not parts or parts[0] not in self.servers:
            return 404, {"error": f"no server named {parts[0] if parts else ''!r} in the inventory"}
        name = parts[0]
        if req.method == "DELETE" and len(parts) == 1:
            del self.servers[name]
            return 200, {"server": name, "result": "removed"}
        if req.method == "POST" and len(parts) == 2 and parts[1] in ("suspend", "resume"):
            self.servers[name]["suspended"] = parts[1] == "suspend"
            return 200, {
                "server": name,
                "result": parts[1] + ("ed" if parts[1] == "suspend" else "d"),
            }
        if req.method == "POST" and len(parts) == 2 and parts[1] == "test":
            return 200, {"server": name, **self.test_result}
        return 404, {"error": "not found"}

    def diagnose(self, req: Request) -> tuple[int, Any]:
        if req.method != "POST":
            return 405, {"error": "use POST (a diagnosis runs commands on the host)"}
        if self.token and req.authorization != f"Bearer {self.token}":
            return 401, {"error": "diagnostics need a valid bearer token"}
        if self.diagnose_delay:
            self.released.wait(self.diagnose_delay)
        if self.diagnose_fail:
            return self.diagnose_fail, "<html>Internal Server Error</html>"
        name = unquote(req.path[len(DIAGNOSE) :])
        if name not in self.servers:
            return 404, {"error": f"no server named {name!r} in the inventory"}
        return 200, {"server": name, **self.diagnose_report}


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
            req = Request(
                self.command, url.path, url.query, self.headers.get("Authorization", ""), body
            )
            fake.requests.append(req)
            code, obj = fake.handle(req)
            data = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
            self.send_response(code)
            self.send_header(
                "Content-Type", "text/html" if isinstance(obj, str) else "application/json"
            )
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
        fake.released.set()  # a held-back diagnosis answers now: its thread ends
        server.shutdown()
        server.server_close()
