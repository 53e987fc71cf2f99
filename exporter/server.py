"""HTTP endpoints: /probe, /sd, /metrics, push heartbeats, /-/healthy, /-/ready, /-/reload.

A stdlib ThreadingHTTPServer rather than Flask: a probe's budget is 2 ms of
CPU all-in and a WSGI stack costs a sizeable part of that. Every connection
runs in its own thread, so a hanging host never delays another probe. Requests
are parsed by exporter.http11 rather than BaseHTTPRequestHandler (its
email-package header parsing: 121-140 -> 32-40 us of CPU per request).
"""

from __future__ import annotations

import html
import json
import logging
import time
from http.server import ThreadingHTTPServer
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exporter.app import ExporterApp, UnknownTarget
from exporter.config import ConfigError
from exporter.http11 import HttpHandler, Request
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


class Handler(HttpHandler):
    server: ExporterHTTPServer
    max_body = MAX_BODY

    def dispatch(self, req: Request) -> None:
        if req.method in ("GET", "HEAD"):
            self._get(urlsplit(req.target))
        elif req.method == "POST":
            self._post(urlsplit(req.target))
        else:
            self.send(501, f"unsupported method {req.method}\n")

    # ------------------------------------------------------------ helpers

    def _json(self, status: int, payload: object) -> None:
        self.send(status, json.dumps(payload), "application/json")

    # ------------------------------------------------------------ routes

    def _get(self, url: SplitResult) -> None:
        app = self.server.app
        if url.path == "/probe":
            self._probe(parse_qs(url.query))
        elif url.path == "/metrics":
            self.send(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
        elif url.path == "/sd":
            self._json(200, app.service_discovery())
        elif url.path == "/-/healthy":
            self.send(200, "Healthy.\n")
        elif url.path == "/-/ready":
            self.send(200, "Ready.\n")
        elif url.path == "/":
            self._landing()
        else:
            self.send(404, "not found\n")

    def _post(self, url: SplitResult) -> None:
        if url.path == "/-/reload":
            try:
                self.server.app.reload()
            except ConfigError as exc:
                self.send(500, f"failed to reload config: {exc}\n")
                return
            self.send(200, "OK\n")
        elif url.path.startswith("/api/v1/heartbeat/"):
            self._push(unquote(url.path[len("/api/v1/heartbeat/"):]))
        else:
            self.send(404, "not found\n")

    def _probe(self, query: dict[str, list[str]]) -> None:
        target = (query.get("target") or [""])[0]
        if not target:
            self.send(400, "target parameter is missing\n")
            return
        module = (query.get("module") or [""])[0] or None
        app = self.server.app
        try:
            server, mod = app.resolve(target, module)
        except UnknownTarget as exc:
            self.send(400, f"{exc}\n")
            return
        timeout: float | None = None
        header = self.req.headers.get("x-prometheus-scrape-timeout-seconds")
        if header:
            try:
                timeout = float(header)
            except ValueError:
                self.send(400, "X-Prometheus-Scrape-Timeout-Seconds is not a number\n")
                return
        result = app.probe(server, mod, timeout)
        self.send(200, result.text, CONTENT_TYPE)

    def _push(self, name: str) -> None:
        app = self.server.app
        body = self.req.body
        server = app.inventory.server(name)
        if server is None:
            app.pushes.labels("unknown_server").inc()
            self.send(404, f"unknown server {name!r}\n")
            return
        if server.push_token is None or not token_matches(server.push_token.get(),
                                                          self.req.headers.get("authorization")):
            app.pushes.labels("unauthorized").inc()
            self.send(401, "missing or wrong bearer token\n")
            return
        try:
            metrics = parse_heartbeat(body)
        except PushError as exc:
            app.pushes.labels("invalid").inc()
            self.send(400, f"{exc}\n")
            return
        app.heartbeats.record(server.name, "push", time.time(), metrics)
        app.pushes.labels("ok").inc()
        self.send(204, b"")

    def _landing(self) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.module)}</td>"
            f"<td>{'yes' if s.suspended else 'no'}</td>"
            f"<td><a href=\"/probe?target={html.escape(s.name, quote=True)}\">probe</a></td></tr>"
            for s in self.server.app.inventory.servers.values()
        )
        self.send(200, LANDING.format(rows=rows), "text/html; charset=utf-8")


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ExporterApp) -> None:
        super().__init__(address, Handler)
        self.app = app
