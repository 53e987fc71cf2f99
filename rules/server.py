"""The engine's HTTP face and its cycle loop.

Endpoints: `/metrics`, `/-/healthy`, `/-/ready` (after the first cycle),
`POST /-/reload` (re-read config and conditions; the old ones stay on any
error), `GET /api/v1/servers[/<name>]` (status, health breakdown, anomalies).

`/-/reload` is the only write endpoint: when `web.reload_token_file` is set it
needs `Authorization: Bearer <token>`; without it only loopback clients may
reload (as a lifecycle endpoint bound to a pod's localhost sidecar would).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
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

log = logging.getLogger(__name__)


def snapshot(engine: Engine) -> dict[str, Any]:
    """JSON view of the last cycle: every server's status, health and anomalies."""
    report = engine.report
    if report is None:
        return {"servers": {}}
    return {"time": report.now, "ok": report.ok, "grace_active": report.grace_active,
            "pipeline": {"prometheus_up": report.ok, "exporter_up": report.exporter_up,
                         "statuses_unknown": report.pipeline_down,
                         "observable_since": report.observable_since,
                         "problems": [{"alertname": p.labels.get("alertname"),
                                       "instance": p.labels.get("instance"),
                                       "since": p.since,
                                       "summary": p.annotations.get("summary"),
                                       "description": p.annotations.get("description")}
                                      for p in list(engine.watch.problems.values())]},
            "servers": {s: server_view(s, report) for s in report.statuses}}


def server_view(server: str, report: CycleReport) -> dict[str, Any]:
    """One server's status (and since when, and why when it is not reached), health, anomalies."""
    h = report.health.get(server)
    status = report.statuses.get(server)
    why = None
    if status == "unknown" and report.pipeline_down:
        why = {"reason": "pipeline_down",
               "reason_text": "the monitoring pipeline cannot see now (see pipeline.problems)"}
    elif status == "unknown":
        why = {"reason": "not_observed_yet",
               "reason_text": "heartbeat stale, but the pipeline has not watched long enough "
                              "to tell"}
    elif status in ("offline", "pending"):
        why = dict(reason_annotations(report.reasons.get(server, Why())))
    return {
        "status": status,
        "since": report.since.get(server),
        "reason": None if why is None else why["reason"],
        "reason_text": None if why is None else why["reason_text"],
        "detail": None if why is None else why.get("detail"),
        "last_error": None if why is None else why.get("last_error"),
        "health": None if h is None else {"color": h.color, "score": h.score,
                                          "worst": h.worst, "components": h.components},
        "anomalies": {m: {"score": u.score, "active": u.active, "severity": u.severity}
                      for (s, m), u in report.anomalies.items() if s == server},
    }


class RulesService:
    """Config, engine, registry and the loop: everything `stacksense-rules run` starts."""

    def __init__(self, config_path: Path | None, *, config: EngineConfig | None = None) -> None:
        self.config_path = config_path
        cfg = config or load_config(config_path)
        self.engine = Engine(cfg, load_conditions(cfg.conditions_file,
                                                  include_defaults=cfg.include_default_conditions))
        self.reload_ok = [True]
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(self.engine, self.reload_ok))
        self.stop_event = threading.Event()
        self._loop: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None

    def reload(self) -> None:
        """Re-read config and conditions; raise ConfigError and keep the old ones on failure."""
        try:
            cfg = load_config(self.config_path)
            conds = load_conditions(cfg.conditions_file,
                                    include_defaults=cfg.include_default_conditions)
        except ConfigError:
            self.reload_ok[0] = False
            raise
        self.engine.reload(cfg, conds)
        self.reload_ok[0] = True
        log.info("configuration reloaded: %d conditions, %d receivers", len(conds),
                 len(cfg.receivers))

    def run_loop(self) -> None:
        """Run cycles every interval until stopped; a failing cycle never ends the loop."""
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.engine.run_cycle()
            except Exception:  # noqa: BLE001 - the loop must survive any bug in one cycle
                log.exception("cycle crashed; next cycle in %gs",
                              self.engine.config.interval_seconds)
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


def _handler(service: RulesService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "stacksense-rules"
        timeout = CLIENT_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, code: int, body: bytes | str, ctype: str = "text/plain; charset=utf-8"
                  ) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, code: int, obj: Any) -> None:
            self._send(code, json.dumps(obj, indent=1), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._send(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
            elif path == "/-/healthy":
                self._send(200, "StackSense rule engine is Healthy.\n")
            elif path == "/-/ready":
                if service.engine.report is None:
                    self._send(503, "not ready: no cycle completed yet\n")
                else:
                    self._send(200, "StackSense rule engine is Ready.\n")
            elif path == "/api/v1/servers":
                self._json(200, snapshot(service.engine))
            elif path.startswith("/api/v1/servers/"):
                name = unquote(path.removeprefix("/api/v1/servers/"))
                report = service.engine.report
                if report is None or name not in report.statuses:
                    self._json(404, {"error": f"unknown server: {name}"})
                else:
                    # No lock: the API must answer during a long cycle; a list copy is atomic.
                    history = list(service.engine.history.get(name, []))
                    self._json(200, {"server": name, **server_view(name, report),
                                     "history": [{"time": t, "status": st}
                                                 for t, st in history]})
            else:
                self._send(404, "not found\n")

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/-/reload":
                self._send(404, "not found\n")
                return
            if not self._authorized():
                self._send(401, "reload needs a valid bearer token\n")
                return
            try:
                service.reload()
            except ConfigError as exc:
                self._send(500, f"reload failed, previous configuration kept: {exc}\n")
                return
            self._send(200, "configuration reloaded\n")

        do_PUT = do_POST  # noqa: N815 - Prometheus accepts PUT on /-/reload too

        def _authorized(self) -> bool:
            token_file = service.engine.config.reload_token_file
            if token_file is None:
                return self.client_address[0] in ("127.0.0.1", "::1")
            try:
                expected = token_file.read_text().strip()
            except OSError:
                log.error("web.reload_token_file unreadable; refusing reload")
                return False
            given = self.headers.get("Authorization", "")
            return bool(expected) and hmac.compare_digest(given.encode(),
                                                          f"Bearer {expected}".encode())

    return Handler
