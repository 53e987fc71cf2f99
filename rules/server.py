"""The engine's HTTP face and its cycle loop.

Routes (one table, ROUTES): `/metrics`, `GET /api/v1/servers[/<name>]` (status, health
breakdown, anomalies) and the operations endpoints, which mean what they mean in every
StackSense service (stacksense_common.ops): `/-/healthy`; `/-/ready` once the first cycle
has completed; `POST|PUT /-/reload` re-reads config and conditions (the old ones stay on
any error), with `Authorization: Bearer <token>` from `web.reload_token_file`, or from
loopback clients only when that is not set. Every answer is counted by route template in
`stacksense_http_requests_total` and `stacksense_http_request_duration_seconds`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rules.conditions import load_conditions
from rules.config import ConfigError, EngineConfig, load_config
from rules.engine import CycleReport, Engine
from rules.metrics import EngineCollector
from rules.reasons import Why, reason_annotations
from stacksense_common.http_metrics import UNMATCHED, HttpMetrics
from stacksense_common.ops import (
    HEALTHY,
    READY,
    RELOAD,
    TEXT,
    Ops,
    ReloadGauges,
    tokens_from_file,
)
from stacksense_common.routes import ANY_METHOD, RouteTable

log = logging.getLogger(__name__)


def snapshot(engine: Engine) -> dict[str, Any]:
    """JSON view of the last cycle: every server's status, health and anomalies."""
    report = engine.report
    if report is None:
        return {"servers": {}}
    return {
        "time": report.now,
        "ok": report.ok,
        "grace_active": report.grace_active,
        "pipeline": {
            "prometheus_up": report.ok,
            "exporter_up": report.exporter_up,
            "statuses_unknown": report.pipeline_down,
            "observable_since": report.observable_since,
            "problems": [
                {
                    "alertname": p.labels.get("alertname"),
                    "instance": p.labels.get("instance"),
                    "since": p.since,
                    "summary": p.annotations.get("summary"),
                    "description": p.annotations.get("description"),
                }
                for p in list(engine.watch.problems.values())
            ],
        },
        "servers": {s: server_view(s, report) for s in report.statuses},
    }


def server_view(server: str, report: CycleReport) -> dict[str, Any]:
    """One server's status (and since when, and why when it is not reached), health, anomalies."""
    h = report.health.get(server)
    status = report.statuses.get(server)
    why = None
    if status == "unknown" and report.pipeline_down:
        why = {
            "reason": "pipeline_down",
            "reason_text": "the monitoring pipeline cannot see now (see pipeline.problems)",
        }
    elif status == "unknown":
        why = {
            "reason": "not_observed_yet",
            "reason_text": "heartbeat stale, but the pipeline has not watched long enough to tell",
        }
    elif status in ("offline", "pending"):
        why = dict(reason_annotations(report.reasons.get(server, Why())))
    return {
        "status": status,
        "since": report.since.get(server),
        "reason": None if why is None else why["reason"],
        "reason_text": None if why is None else why["reason_text"],
        "detail": None if why is None else why.get("detail"),
        "last_error": None if why is None else why.get("last_error"),
        "health": None
        if h is None
        else {"color": h.color, "score": h.score, "worst": h.worst, "components": h.components},
        "anomalies": {
            m: {"score": u.score, "active": u.active, "severity": u.severity}
            for (s, m), u in report.anomalies.items()
            if s == server
        },
    }


class RulesService:
    """Config, engine, registry and the loop: everything `stacksense-rules run` starts."""

    def __init__(self, config_path: Path | None, *, config: EngineConfig | None = None) -> None:
        self.config_path = config_path
        cfg = config or load_config(config_path)
        self.engine = Engine(
            cfg,
            load_conditions(cfg.conditions_file, include_defaults=cfg.include_default_conditions),
        )
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(self.engine))
        self.reload_gauges = ReloadGauges("rules", self.registry)
        self.reload_gauges.succeeded()
        self.http_metrics = HttpMetrics(self.registry)
        self.ops = Ops(
            "rule engine",
            ready=self._not_ready,
            reload=self.reload,
            config_errors=(ConfigError,),
            write_tokens=lambda: tokens_from_file(self.engine.config.reload_token_file),
        )
        self.stop_event = threading.Event()
        self._loop: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None

    def reload(self) -> None:
        """Re-read config and conditions; raise ConfigError and keep the old ones on failure."""
        try:
            cfg = load_config(self.config_path)
            conds = load_conditions(
                cfg.conditions_file, include_defaults=cfg.include_default_conditions
            )
        except ConfigError:
            self.reload_gauges.failed()
            raise
        self.engine.reload(cfg, conds)
        self.reload_gauges.succeeded()
        log.info(
            "configuration reloaded: %d conditions, %d receivers", len(conds), len(cfg.receivers)
        )

    def _not_ready(self) -> str | None:
        """Ready once a cycle has completed: statuses exist to serve and alert on."""
        return "no cycle completed yet" if self.engine.report is None else None

    def run_loop(self) -> None:
        """Run cycles every interval until stopped; a failing cycle never ends the loop."""
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.engine.run_cycle()
            except Exception:  # noqa: BLE001 - the loop must survive any bug in one cycle
                log.exception(
                    "cycle crashed; next cycle in %gs", self.engine.config.interval_seconds
                )
            # Fixed-rate cycles (as Prometheus evaluates rules), not fixed delays.
            elapsed = time.monotonic() - started
            self.stop_event.wait(max(0.0, self.engine.config.interval_seconds - elapsed))

    def start(self, listen: str | None = None) -> tuple[str, int]:
        """Start the HTTP server and the loop in threads; return the bound address."""
        host, _, port = (listen or self.engine.config.listen_address).rpartition(":")
        self._http = ThreadingHTTPServer((host or "0.0.0.0", int(port)), _handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True, name="http").start()
        self._loop = threading.Thread(target=self.run_loop, daemon=True, name="cycles")
        self._loop.start()
        address = self._http.server_address
        return str(address[0]), int(address[1])

    def stop(self) -> None:
        """Stop the loop and the HTTP server."""
        self.stop_event.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._loop is not None:
            self._loop.join(timeout=30)
        self.engine.save_anomalies()  # detectors keep what they learnt across restarts


# Socket timeout per connection: a client that connects and goes silent gives its thread
# back after this long instead of holding it for ever.
CLIENT_TIMEOUT = 60.0


class _Handler(BaseHTTPRequestHandler):
    """Answers through the route table; `service` is set on the subclass `_handler` makes."""

    server_version = "stacksense-rules"
    service: RulesService
    _status = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def _send(
        self,
        code: int,
        body: bytes | str,
        ctype: str = TEXT,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj, indent=1), "application/json")

    def _serve(self) -> None:
        started = time.perf_counter()
        self._status = 0
        path = urlsplit(self.path).path
        match = ROUTES.match(path)
        label = UNMATCHED
        try:
            if match is None:
                self._send(404, "not found\n")
            elif not match.route.allows(self.command):
                allow = ", ".join(sorted(match.route.methods))
                label = match.route.template
                self._send(
                    405,
                    f"method {self.command} not allowed (allowed: {allow})\n",
                    headers=(("Allow", allow),),
                )
            else:
                label = match.route.template
                match.route.target(self, path, match.params)
        finally:
            if self._status:
                self.service.http_metrics.observe(
                    label, self._status, time.perf_counter() - started
                )

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests http.server refuses before routing (malformed, too long) count too."""
        super().send_error(code, message, explain)
        if getattr(self, "service", None) is not None:
            self.service.http_metrics.observe(UNMATCHED, code, 0.0)

    # ------------------------------------------------------------ routes

    def _metrics(self, path: str, params: dict[str, str]) -> None:
        self._send(200, generate_latest(self.service.registry), CONTENT_TYPE_LATEST)

    def _ops(self, path: str, params: dict[str, str]) -> None:
        answer = self.service.ops.handle(
            self.command,
            path,
            self.headers.get("Authorization"),
            self.client_address[0],
            self.headers.get("Origin"),
        )
        assert answer is not None  # the table routes only ops paths here
        self._send(answer.status, answer.text, headers=answer.headers)

    def _servers(self, path: str, params: dict[str, str]) -> None:
        self._json(200, snapshot(self.service.engine))

    def _server(self, path: str, params: dict[str, str]) -> None:
        name = unquote(params["name"])
        engine = self.service.engine
        report = engine.report
        if report is None or name not in report.statuses:
            self._json(404, {"error": f"unknown server: {name}"})
            return
        # No lock: the API must answer during a long cycle; a list copy is atomic.
        history = list(engine.history.get(name, []))
        self._json(
            200,
            {
                "server": name,
                **server_view(name, report),
                "history": [{"time": t, "status": st} for t, st in history],
            },
        )


RouteTarget = Callable[[_Handler, str, dict[str, str]], None]
ROUTES: RouteTable[RouteTarget] = RouteTable()
ROUTES.add("/metrics", _Handler._metrics)
for _path in (HEALTHY, READY, RELOAD):
    ROUTES.add(_path, _Handler._ops, ANY_METHOD)  # ops answers 405 itself
ROUTES.add("/api/v1/servers", _Handler._servers)
ROUTES.add("/api/v1/servers/<name>", _Handler._server)


def _handler(service: RulesService) -> type[_Handler]:
    return type("Handler", (_Handler,), {"service": service, "timeout": CLIENT_TIMEOUT})
