"""HTTP endpoints: /probe, /sd, /metrics, push heartbeats, /-/healthy, /-/ready, /-/reload.

A stdlib ThreadingHTTPServer rather than Flask: a probe's budget is 2 ms of
CPU all-in and a WSGI stack costs a sizeable part of that. Every connection
runs in its own thread, so a hanging host never delays another probe. Requests
are parsed by exporter.http11 rather than BaseHTTPRequestHandler (its
email-package header parsing: 121-140 -> 32-40 us of CPU per request).

Limits: at most `max_connections` client connections at once (default 256);
one more is answered `503` with one line and closed, from the accept loop
itself (no thread). The listen backlog (1024) absorbs Prometheus' bursts of
new connections. When accept() fails for want of file descriptors the loop
pauses (5 ms doubling to 1 s) instead of spinning on a listening socket that
stays readable.

`POST /-/reload` (or PUT) is authenticated as the rule engine's is: with a
reload token file, `Authorization: Bearer <token>`; without one, loopback
clients only; 401 otherwise. Writes to `/api/v1/servers` (exporter.fleet_api)
are authorized the same way, with the API token file (default: the reload one),
and so is `POST /api/v1/diagnose/<server>` (exporter.diagnose_api).
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import html
import json
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exporter.app import ExporterApp, UnknownTarget
from exporter.config import ConfigError
from exporter.diagnose_api import PREFIX as DIAGNOSE_PREFIX
from exporter.diagnose_api import DiagnoseApi
from exporter.fleet_api import PREFIX as FLEET_PREFIX
from exporter.fleet_api import FleetApi
from exporter.http11 import HttpHandler, Request, response_bytes
from exporter.metrics import CONTENT_TYPE
from exporter.push import PushError, parse_push, push_authorized

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 256
LISTEN_BACKLOG = 1024
# accept() failing for want of descriptors: pause this long, doubling, at most ACCEPT_PAUSE_MAX.
ACCEPT_PAUSE_MIN = 0.005
ACCEPT_PAUSE_MAX = 1.0
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

LANDING = """<!doctype html><html><head><title>StackSense exporter</title></head><body>
<h1>StackSense exporter</h1><p>Agentless SSH collection under node_exporter's names.</p>
<ul><li><a href="/metrics">/metrics</a> (the exporter itself and heartbeats)</li>
<li><a href="/sd">/sd</a> (http_sd targets)</li>
<li>/probe?target=NAME&amp;module=MODULE</li></ul>
<h2>Servers</h2><p><a href="/api/v1/servers">/api/v1/servers</a> (status, last heartbeat,
reason)</p><table><tr><th>name</th><th>module</th><th>suspended</th><th>probe</th></tr>
{rows}</table></body></html>
"""


class Handler(HttpHandler):
    server: ExporterHTTPServer
    max_body = MAX_BODY

    def dispatch(self, req: Request) -> None:
        url = urlsplit(req.target)
        if url.path == FLEET_PREFIX or url.path.startswith(FLEET_PREFIX + "/"):
            writing = req.method not in ("GET", "HEAD")
            authorized = writing and self._token_authorized(self.server.api_token_file)
            status, payload = self.server.fleet.handle(req.method, url.path, url.query,
                                                       req.body, authorized)
            self._json(status, payload)
        elif url.path.startswith(DIAGNOSE_PREFIX):
            authorized = self._token_authorized(self.server.api_token_file)
            status, payload = self.server.diagnose.handle(req.method, url.path, req.body,
                                                          authorized)
            self._json(status, payload)
        elif req.method in ("GET", "HEAD"):
            self._get(urlsplit(req.target))
        elif req.method == "POST" or (req.method == "PUT" and req.target == "/-/reload"):
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
            if not self._reload_authorized():
                self.send(401, "reload needs a valid bearer token\n")
                return
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

    def _reload_authorized(self) -> bool:
        return self._token_authorized(self.server.reload_token_file)

    def _token_authorized(self, token_file: Path | None) -> bool:
        if token_file is None:
            return self.client_address[0] in ("127.0.0.1", "::1", "::ffff:127.0.0.1")
        try:
            expected = token_file.read_text().strip()  # read each time: rotation needs no restart
        except (OSError, UnicodeDecodeError):
            log.error("token file %s unreadable; refusing the request", token_file)
            return False
        given = self.req.headers.get("authorization", "")
        return bool(expected) and hmac.compare_digest(given.encode(),
                                                      f"Bearer {expected}".encode())

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
        if not push_authorized(server, self.req.headers.get("authorization")):
            app.pushes.labels("unauthorized").inc()
            self.send(401, "missing or wrong bearer token\n")
            return
        try:
            metrics, agent = parse_push(body)
        except PushError as exc:
            app.pushes.labels("invalid").inc()
            self.send(400, f"{exc}\n")
            return
        app.heartbeats.record(server.name, "push", time.time(), metrics, agent)
        app.pushes.labels("ok").inc()
        self.send(204, b"")

    def _landing(self) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.module)}</td>"
            f"<td>{'yes' if s.suspended else 'no'}</td>"
            + ("<td>push-only</td></tr>" if s.push_only else
               f"<td><a href=\"/probe?target={html.escape(s.name, quote=True)}\">probe</a>"
               "</td></tr>")
            for s in self.server.app.inventory.servers.values()
        )
        self.send(200, LANDING.format(rows=rows), "text/html; charset=utf-8")


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], app: ExporterApp, *,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 reload_token_file: Path | None = None,
                 api_token_file: Path | None = None) -> None:
        self.app = app
        self.fleet = FleetApi(app)
        self.diagnose = DiagnoseApi(app)
        self.max_connections = max_connections
        self.reload_token_file = reload_token_file
        self.api_token_file = api_token_file or reload_token_file
        self._active = 0
        self._active_lock = threading.Lock()
        self._accept_pause = 0.0
        self._fd_warned_at = float("-inf")
        super().__init__(address, Handler)

    def active_connections(self) -> int:
        with self._active_lock:
            return self._active

    def get_request(self) -> tuple[socket.socket, object]:
        try:
            conn = self.socket.accept()
        except OSError as exc:
            if exc.errno in _OUT_OF_FDS:
                self._pause_accepting(exc)
            raise  # socketserver drops the attempt and selects again
        self._accept_pause = 0.0
        return conn

    def _pause_accepting(self, exc: OSError) -> None:
        """The listening socket stays readable while accept() has no descriptor to give:
        without a pause the loop spins at 100 % CPU and starves the probe threads."""
        now = time.monotonic()
        if now - self._fd_warned_at > 60:
            self._fd_warned_at = now
            log.warning("cannot accept connections: %s; pausing accepts until descriptors "
                        "are free (raise the open-file limit or lower --web.max-connections)",
                        exc.strerror)
        self._accept_pause = min(ACCEPT_PAUSE_MAX,
                                 max(ACCEPT_PAUSE_MIN, self._accept_pause * 2))
        time.sleep(self._accept_pause)

    def process_request(self, request: socket.socket,  # type: ignore[override]
                        client_address: object) -> None:
        with self._active_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except BaseException:
            with self._active_lock:
                self._active -= 1
            raise

    def process_request_thread(self, request: socket.socket,  # type: ignore[override]
                               client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            with self._active_lock:
                self._active -= 1

    def _refuse(self, request: socket.socket) -> None:
        """503 and close, without a thread and without ever blocking the accept loop."""
        body = (f"too many connections (limit {self.max_connections}); retry later\n").encode()
        request.setblocking(False)
        with contextlib.suppress(OSError):
            # Take what the client already sent, so that closing does not reset the
            # connection before it reads the answer.
            request.recv(65536)
        with contextlib.suppress(OSError):
            request.send(response_bytes(503, body, "text/plain; charset=utf-8", close=True))
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            request.recv(65536)
        request.close()

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints a traceback to stderr; one line is enough (details at debug).
        log.warning("connection from %s failed", client_address, exc_info=log.isEnabledFor(
            logging.DEBUG))
