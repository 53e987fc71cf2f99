"""HTTP endpoints: /probe, /sd, /metrics, push heartbeats, /-/healthy, /-/ready, /-/reload.

A stdlib ThreadingHTTPServer rather than Flask: a probe's budget is 2 ms of
CPU all-in and a WSGI stack costs a sizeable part of that. Every request runs
in its own thread, so a hanging host never delays another probe.
"""

from __future__ import annotations

import html
import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exporter.app import ExporterApp, UnknownTarget
from exporter.config import ConfigError
from exporter.metrics import CONTENT_TYPE
from exporter.push import PushError, parse_heartbeat, token_matches

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

LANDING = """<!doctype html><html><head><title>StackSense exporter</title></head><body>
<h1>StackSense exporter</h1><p>Agentless SSH collection under node_exporter's names.</p>
<ul><li><a href="/metrics">/metrics</a> (the exporter itself and heartbeats)</li>
<li><a href="/sd">/sd</a> (http_sd targets)</li>
<li>/probe?target=NAME&amp;module=MODULE</li></ul>
<h2>Servers</h2><table><tr><th>name</th><th>module</th><th>suspended</th><th>probe</th></tr>
{rows}</table></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------ helpers

    def _send(self, status: int, body: bytes | str, content_type: str = "text/plain") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload), "application/json")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {MAX_BODY} bytes\n")
            return None
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        app = self.server.app
        if url.path == "/probe":
            self._probe(parse_qs(url.query))
        elif url.path == "/metrics":
            self._send(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
        elif url.path == "/sd":
            self._json(200, app.service_discovery())
        elif url.path == "/-/healthy":
            self._send(200, "Healthy.\n")
        elif url.path == "/-/ready":
            self._send(200, "Ready.\n")
        elif url.path == "/":
            self._landing()
        else:
            self._send(404, "not found\n")

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        if url.path == "/-/reload":
            self._read_body()
            try:
                self.server.app.reload()
            except ConfigError as exc:
                self._send(500, f"failed to reload config: {exc}\n")
                return
            self._send(200, "OK\n")
        elif url.path.startswith("/api/v1/heartbeat/"):
            self._push(unquote(url.path[len("/api/v1/heartbeat/"):]))
        else:
            self._send(404, "not found\n")

    def _probe(self, query: dict[str, list[str]]) -> None:
        target = (query.get("target") or [""])[0]
        if not target:
            self._send(400, "target parameter is missing\n")
            return
        module = (query.get("module") or [""])[0] or None
        app = self.server.app
        try:
            server, mod = app.resolve(target, module)
        except UnknownTarget as exc:
            self._send(400, f"{exc}\n")
            return
        timeout: float | None = None
        header = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
        if header:
            try:
                timeout = float(header)
            except ValueError:
                self._send(400, "X-Prometheus-Scrape-Timeout-Seconds is not a number\n")
                return
        result = app.probe(server, mod, timeout)
        self._send(200, result.text, CONTENT_TYPE)

    def _push(self, name: str) -> None:
        app = self.server.app
        body = self._read_body()
        if body is None:
            return
        server = app.inventory.server(name)
        if server is None:
            app.pushes.labels("unknown_server").inc()
            self._send(404, f"unknown server {name!r}\n")
            return
        if server.push_token is None or not token_matches(server.push_token.get(),
                                                          self.headers.get("Authorization")):
            app.pushes.labels("unauthorized").inc()
            self._send(401, "missing or wrong bearer token\n")
            return
        try:
            metrics = parse_heartbeat(body)
        except PushError as exc:
            app.pushes.labels("invalid").inc()
            self._send(400, f"{exc}\n")
            return
        app.heartbeats.record(server.name, "push", time.time(), metrics)
        app.pushes.labels("ok").inc()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _landing(self) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.module)}</td>"
            f"<td>{'yes' if s.suspended else 'no'}</td>"
            f"<td><a href=\"/probe?target={html.escape(s.name, quote=True)}\">probe</a></td></tr>"
            for s in self.server.app.inventory.servers.values()
        )
        self._send(200, LANDING.format(rows=rows), "text/html; charset=utf-8")


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ExporterApp) -> None:
        super().__init__(address, Handler)
        self.app = app
