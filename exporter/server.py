"""The exporter's HTTP endpoints: /probe, /sd, /metrics, heartbeats, fleet API, ops.

A stdlib ThreadingHTTPServer rather than Flask: a probe's CPU budget is small
and a WSGI stack costs a sizeable part of it. Every connection runs in its own
thread, so a hanging host never delays another probe. Requests are parsed by
exporter.http11 rather than BaseHTTPRequestHandler (whose email-package header
parsing costs several times more per request).

Routes are one table (ROUTES, stacksense_common.routes): its templates are also
the `handler` label of `stacksense_http_requests_total` and
`stacksense_http_request_duration_seconds` (stacksense_common.http_metrics).

Limits: at most `max_connections` client connections at once (default 256).
At the limit, a new connection takes the place of the one that has waited
longest for its next request, if it has waited `idle_grace` (1 s) or more:
idle keep-alive connections, or clients that never finish sending a request,
cannot lock out Prometheus. When every connection is busy, one more is
answered `503` with one line and closed, from the accept loop itself (no
thread). The listen backlog (1024) absorbs Prometheus' bursts of
new connections. When accept() fails for want of file descriptors the loop
pauses (5 ms doubling to 1 s) instead of spinning on a listening socket that
stays readable.

/-/healthy, /-/ready and /-/reload mean what they mean in every StackSense
service (stacksense_common.ops). The exporter is ready as soon as it serves: its
inventory was loaded at start, and a failed reload keeps the previous one.
`POST /-/reload` (or PUT) needs `Authorization: Bearer <token>` with a token
from --web.reload-token-file; without that file, loopback clients only (and
not a web page: no Origin header).
Writes to `/api/v1/servers` (exporter.fleet_api) and `POST
/api/v1/diagnose/<server>` (exporter.diagnose_api) follow the same rule with
the API token file (default: the reload one).
"""

from __future__ import annotations

import contextlib
import errno
import html
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from exporter.app import ExporterApp, UnknownTarget
from exporter.config import ConfigError
from exporter.diagnose_api import PREFIX as DIAGNOSE_PREFIX
from exporter.diagnose_api import DiagnoseApi
from exporter.exposition import CONTENT_TYPE
from exporter.fleet_api import PREFIX as FLEET_PREFIX
from exporter.fleet_api import FleetApi
from exporter.http11 import HttpHandler, Request, response_bytes
from exporter.push import PushError, parse_push, push_authorized
from stacksense_common.http_metrics import UNMATCHED, HttpMetrics
from stacksense_common.ops import (
    HEALTHY,
    READY,
    RELOAD,
    TEXT,
    Ops,
    tokens_from_file,
    write_refusal,
)
from stacksense_common.routes import ANY_METHOD, RouteTable

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 256
# At the connection limit, a connection waiting this long for a request makes room.
DEFAULT_IDLE_GRACE = 1.0
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
        match = ROUTES.match(url.path)
        if match is None:
            self.send(404, "not found\n")
            return
        route = match.route
        self.handler_label = route.template
        if not route.allows(req.method):
            allow = ", ".join(sorted(route.methods))
            self.send(
                405,
                f"method {req.method} not allowed (allowed: {allow})\n",
                extra=f"Allow: {allow}\r\n",
            )
            return
        route.target(self, req, url, match.params)

    def finished(self, handler: str, status: int, seconds: float) -> None:
        self.server.http_metrics.observe(handler, status, seconds)

    def waiting(self, idle: bool) -> None:
        self.server.note_waiting(self.connection, idle)

    # ------------------------------------------------------------ helpers

    def _json(self, status: int, payload: object) -> None:
        self.send(status, json.dumps(payload), "application/json")

    def _token_authorized(self, token_file: Path | None) -> bool:
        """The one write rule (stacksense_common.ops): a bearer token from the file, or
        loopback clients only without one."""
        headers = self.req.headers
        return (
            write_refusal(
                tokens_from_file(token_file),
                headers.get("authorization"),
                self.client_address[0],
                headers.get("origin"),
            )
            is None
        )

    # ------------------------------------------------------------ routes

    def _ops(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        answer = self.server.ops.handle(
            req.method,
            url.path,
            req.headers.get("authorization"),
            self.client_address[0],
            req.headers.get("origin"),
        )
        assert answer is not None  # the table routes only ops paths here
        self.send(
            answer.status,
            answer.text,
            TEXT,
            extra="".join(f"{k}: {v}\r\n" for k, v in answer.headers),
        )

    def _fleet(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        writing = req.method not in ("GET", "HEAD")
        authorized = writing and self._token_authorized(self.server.api_token_file)
        status, payload = self.server.fleet.handle(
            req.method, url.path, url.query, req.body, authorized
        )
        self._json(status, payload)

    def _diagnose(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        authorized = self._token_authorized(self.server.api_token_file)
        status, payload = self.server.diagnose.handle(req.method, url.path, req.body, authorized)
        self._json(status, payload)

    def _metrics(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        self.send(200, generate_latest(self.server.app.registry), CONTENT_TYPE_LATEST)

    def _sd(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        self._json(200, self.server.app.service_discovery())

    def _probe(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        query = parse_qs(url.query)
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

    def _push(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        name = unquote(params["server"])
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

    def _landing(self, req: Request, url: SplitResult, params: dict[str, str]) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.module)}</td>"
            f"<td>{'yes' if s.suspended else 'no'}</td>"
            + (
                "<td>push-only</td></tr>"
                if s.push_only
                else f'<td><a href="/probe?target={html.escape(s.name, quote=True)}">probe</a>'
                "</td></tr>"
            )
            for s in self.server.app.inventory.servers.values()
        )
        self.send(200, LANDING.format(rows=rows), "text/html; charset=utf-8")


RouteTarget = Callable[[Handler, Request, SplitResult, dict[str, str]], None]
ROUTES: RouteTable[RouteTarget] = RouteTable()
ROUTES.add("/probe", Handler._probe)
ROUTES.add("/metrics", Handler._metrics)
ROUTES.add("/sd", Handler._sd)
ROUTES.add("/", Handler._landing)
for _path in (HEALTHY, READY, RELOAD):
    ROUTES.add(_path, Handler._ops, ANY_METHOD)  # ops answers 405 itself
ROUTES.add("/api/v1/heartbeat/<server>", Handler._push, ("POST",))
# The fleet and diagnose APIs check methods and answer in JSON themselves.
for _path in (FLEET_PREFIX, f"{FLEET_PREFIX}/<name>", f"{FLEET_PREFIX}/<name>/<action>"):
    ROUTES.add(_path, Handler._fleet, ANY_METHOD)
ROUTES.add(f"{DIAGNOSE_PREFIX}<server>", Handler._diagnose, ANY_METHOD)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        app: ExporterApp,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_grace: float = DEFAULT_IDLE_GRACE,
        reload_token_file: Path | None = None,
        api_token_file: Path | None = None,
    ) -> None:
        self.app = app
        self.fleet = FleetApi(app)
        self.diagnose = DiagnoseApi(app)
        self.max_connections = max_connections
        self.reload_token_file = reload_token_file
        self.ops = Ops(
            "exporter",
            ready=lambda: None,
            reload=app.reload,
            config_errors=(ConfigError,),
            write_tokens=lambda: tokens_from_file(self.reload_token_file),
        )
        self.http_metrics = HttpMetrics(app.registry)
        self.api_token_file = api_token_file or reload_token_file
        self.idle_grace = idle_grace
        self._active = 0
        self._active_lock = threading.Lock()
        # Connections waiting for a request, and since when (under _active_lock).
        self._waiting: dict[socket.socket, float] = {}
        self.idle_closed = Counter(
            "stacksense_exporter_http_idle_connections_closed_total",
            "Connections closed while waiting for a request, to make room at the connection limit.",
            registry=app.registry,
        )
        self._accept_pause = 0.0
        self._fd_warned_at = float("-inf")
        super().__init__(address, Handler)

    def active_connections(self) -> int:
        with self._active_lock:
            return self._active

    def note_waiting(self, sock: socket.socket, idle: bool) -> None:
        with self._active_lock:
            if idle:
                self._waiting[sock] = time.monotonic()
            else:
                self._waiting.pop(sock, None)

    def _longest_waiting(self) -> socket.socket | None:
        """Under _active_lock: the connection that has waited longest, if past the grace."""
        if not self._waiting:
            return None
        sock, since = min(self._waiting.items(), key=lambda item: item[1])
        if time.monotonic() - since < self.idle_grace:
            return None
        del self._waiting[sock]
        return sock

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
            log.warning(
                "cannot accept connections: %s; pausing accepts until descriptors "
                "are free (raise the open-file limit or lower --web.max-connections)",
                exc.strerror,
            )
        self._accept_pause = min(ACCEPT_PAUSE_MAX, max(ACCEPT_PAUSE_MIN, self._accept_pause * 2))
        time.sleep(self._accept_pause)

    def process_request(
        self,
        request: socket.socket,  # type: ignore[override]
        client_address: object,
    ) -> None:
        evict = None
        with self._active_lock:
            full = self._active >= self.max_connections
            if full:
                evict = self._longest_waiting()
            if not full or evict is not None:
                # An evicted connection's thread ends at once (its read sees EOF), so the
                # count is over the limit only for that moment.
                self._active += 1
        if evict is not None:
            with contextlib.suppress(OSError):
                evict.shutdown(socket.SHUT_RDWR)
            self.idle_closed.inc()
            log.debug("at the connection limit: closed the longest-idle connection")
        elif full:
            started = time.perf_counter()
            self._refuse(request)
            self.http_metrics.observe(UNMATCHED, 503, time.perf_counter() - started)
            return
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except BaseException:
            with self._active_lock:
                self._active -= 1
            raise

    def process_request_thread(
        self,
        request: socket.socket,  # type: ignore[override]
        client_address: object,
    ) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            with self._active_lock:
                self._active -= 1
                self._waiting.pop(request, None)

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
        log.warning(
            "connection from %s failed", client_address, exc_info=log.isEnabledFor(logging.DEBUG)
        )
