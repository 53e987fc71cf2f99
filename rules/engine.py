"""One evaluation cycle for the whole fleet: query, decide, alert, persist.

`Engine.run_cycle(now)` runs six fleet-wide queries (heartbeats, suspension,
exporter `up` history, Prometheus start time, usage metrics, conditions),
then decides status, health, conditions and anomalies in Python, hands the
firing alerts to the alert book, sends them, and saves its state. The clock
is passed in, so tests and backtests evaluate any instant of history.

When Prometheus cannot be asked, nothing is decided: statuses stay as they
were, firing alerts are re-sent as they are, and the failure shows in the
metrics. The fleet is never declared offline for want of an answer.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from rules import grace, queries
from rules.alerts import AlertBook, AlertRecord, send_alerts
from rules.anomaly import AnomalyTracker, AnomalyUpdate
from rules.conditions import Condition, ConditionTracker
from rules.config import ConfigError, EngineConfig
from rules.detector import params_from_dict
from rules.health import Health, health_of
from rules.promapi import PrometheusClient, PrometheusError, PrometheusQueryError, Sample
from rules.state import load_state, save_state
from rules.status import StatusInputs, decide_status

log = logging.getLogger(__name__)

QUERY_CONCURRENCY = 4
MAX_CATCHUP_POINTS = 240  # anomaly points replayed after a gap (1 h at 15 s)
TROUBLE_SEVERITIES = frozenset({"critical", "warning"})


@dataclass
class CycleReport:
    """What one cycle decided (what /metrics and the API show)."""

    now: float
    ok: bool
    statuses: dict[str, str] = field(default_factory=dict)
    health: dict[str, Health] = field(default_factory=dict)
    anomalies: dict[tuple[str, str], AnomalyUpdate] = field(default_factory=dict)
    firing_conditions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    grace_active: bool = False
    pipeline_down: bool = False
    queries: int = 0
    duration_seconds: float = 0.0
    error: str = ""


@dataclass
class Counters:
    """Monotonic counters for /metrics."""

    cycles: int = 0
    failed_cycles: int = 0
    alerts_sent: dict[str, int] = field(default_factory=dict)
    alerts_failed: dict[str, int] = field(default_factory=dict)
    condition_errors: dict[str, int] = field(default_factory=dict)


class Engine:
    """The rule engine: owns the state and runs cycles."""

    def __init__(self, config: EngineConfig, conditions: list[Condition], *,
                 session: requests.Session | None = None,
                 client: PrometheusClient | None = None) -> None:
        self.session = session or requests.Session()
        self.lock = threading.Lock()
        self.counters = Counters()
        self.report: CycleReport | None = None
        self._apply(config, conditions, client)
        self._load()

    def _apply(self, config: EngineConfig, conditions: list[Condition],
               client: PrometheusClient | None = None) -> None:
        token_file = config.prometheus_bearer_token_file
        self.config = config
        self.conditions = conditions
        previous: PrometheusClient | None = getattr(self, "client", None)
        try:
            token = token_file.read_text().strip() if token_file else None
        except OSError as exc:
            raise ConfigError(f"prometheus.bearer_token_file: cannot read {token_file}: "
                              f"{exc.strerror or exc}") from None
        self.client = client or PrometheusClient(
            config.prometheus_url, session=self.session,
            timeout=config.prometheus_timeout_seconds, retries=config.prometheus_retries,
            bearer_token=token)
        if previous is not None:  # counters are monotonic across reloads
            self.client.queries, self.client.errors = previous.queries, previous.errors
        self.grace_settings = grace.GraceSettings(
            outage_threshold_seconds=config.outage_threshold_seconds,
            grace_period_seconds=config.grace_period_seconds,
            stale_after_seconds=config.offline_after_seconds)

    def reload(self, config: EngineConfig, conditions: list[Condition]) -> None:
        """Swap configuration and conditions at once; state of removed conditions is dropped."""
        with self.lock:
            self._apply(config, conditions)
            self.tracker.forget_missing({c.alert for c in conditions})
            self.book.resolved_resend_seconds = config.resolved_resend_seconds

    def _load(self) -> None:
        raw = load_state(self.config.state_file)
        self.statuses: dict[str, tuple[str, float]] = {
            s: (str(v[0]), float(v[1])) for s, v in raw.get("statuses", {}).items()}
        self.tracker = ConditionTracker.from_state(raw.get("conditions"))
        self.book = AlertBook.from_state(raw.get("alerts"), self.config.resolved_resend_seconds)
        # The detectors' state is large (KBs per series): it lives in its own file,
        # written every `anomaly_save_interval` and on shutdown, not every cycle.
        anomaly_state = load_state(self.anomaly_state_path())
        self.anomalies = AnomalyTracker.from_state(
            anomaly_state.get("tracker") or {},
            params=params_from_dict(self.config.detector_params))
        self.anomaly_last: dict[str, float] = dict(anomaly_state.get("last", {}))
        self.anomalies_saved_at: float | None = anomaly_state.get("saved_at")
        self.last_cycle: float | None = raw.get("last_cycle")
        self.grace_until: float | None = raw.get("grace_until")
        self.last_ok_cycle: float | None = raw.get("last_ok_cycle")

    def _save(self) -> None:
        save_state(self.config.state_file, {
            "statuses": {s: list(v) for s, v in self.statuses.items()},
            "conditions": self.tracker.get_state(),
            "alerts": self.book.get_state(),
            "last_cycle": self.last_cycle,
            "grace_until": self.grace_until,
            "last_ok_cycle": self.last_ok_cycle,
        })

    def anomaly_state_path(self) -> Path:
        """Where the detectors' state lives (next to the main state file)."""
        path = self.config.state_file
        return path.with_name(path.name + ".anomalies")

    def save_anomalies(self, now: float | None = None) -> None:
        """Write the detectors' state (periodically, and on shutdown)."""
        with self.lock:
            saved_at = time.time() if now is None else now
            save_state(self.anomaly_state_path(), {
                "tracker": self.anomalies.get_state(), "last": self.anomaly_last,
                "saved_at": saved_at})
            self.anomalies_saved_at = saved_at

    # --- the cycle ----------------------------------------------------------------------

    def run_cycle(self, now: float | None = None) -> CycleReport:
        """Evaluate the fleet at `now` (default: the wall clock) and send alerts."""
        now = time.time() if now is None else now
        with self.lock:
            started, queries_before = time.perf_counter(), self.client.queries
            report = CycleReport(now=now, ok=True)
            try:
                self._evaluate(now, report)
            except PrometheusError as exc:
                report.ok, report.error = False, str(exc)
                self.counters.failed_cycles += 1
                log.error("cycle at %.0f: cannot evaluate, keeping previous decisions: %s",
                          now, exc)
                report.statuses = {s: v[0] for s, v in self.statuses.items()}
                if self.report is not None:
                    report.health, report.anomalies = self.report.health, self.report.anomalies
            for a in self.tracker.firing():
                key = (a.labels.get("server", ""), a.condition, a.labels.get("severity", ""))
                report.firing_conditions[key] = report.firing_conditions.get(key, 0) + 1
            self._deliver(now)
            self.last_cycle = now
            self._save()
            self.counters.cycles += 1
            report.queries = self.client.queries - queries_before
            report.duration_seconds = time.perf_counter() - started
            self.report = report
        saved = self.anomalies_saved_at
        if saved is None or not 0 <= now - saved < self.config.anomaly_save_interval_seconds:
            self.save_anomalies(now)
        return report

    def _evaluate(self, now: float, report: CycleReport) -> None:
        cfg = self.config
        hb_window = cfg.grace_offline_after_seconds + 60.0
        metric_names = sorted(set(queries.HEALTH_METRICS) | set(cfg.anomaly_metrics))
        # The queries are independent: run them concurrently so Prometheus can use
        # several cores; the cycle's wall time is then the slowest query, not the sum.
        with ThreadPoolExecutor(max_workers=QUERY_CONCURRENCY) as pool:
            f_hb = pool.submit(self.client.query, queries.heartbeats(hb_window), now)
            f_inv = pool.submit(self.client.query, queries.suspended(hb_window), now)
            f_up = pool.submit(self.client.query_matrix, queries.exporter_up(
                cfg.exporter_job, self.grace_settings.window_seconds), now)
            f_start = pool.submit(self.client.query,
                                  queries.prometheus_start(cfg.prometheus_job), now)
            f_metrics = [pool.submit(self._fleet_metrics, q, now)
                         for q in queries.fleet_metric_queries(metric_names)]
            f_cond = pool.submit(self._condition_results, now)
            heartbeats = {s.labels["server"]: s.value for s in f_hb.result()
                          if "server" in s.labels and math.isfinite(s.value) and s.value > 0}
            inventory = {s.labels["server"]: s.value for s in f_inv.result()
                         if "server" in s.labels}
            up, start, results = f_up.result(), f_start.result(), f_cond.result()
            metrics = {k: v for f in f_metrics for k, v in f.result().items()}

        gstate = grace.GraceState(grace_until=self.grace_until)
        grace.from_engine_downtime(self.last_cycle, now, self.grace_settings, gstate)
        grace.from_up_history(up, now, self.grace_settings, gstate)
        grace.from_prometheus_start(start[0].value if start else None, bool(up), now,
                                    self.grace_settings, gstate)
        if gstate.reasons and gstate.active(now) and not report_grace_known(self, gstate):
            log.warning("monitoring outage detected (%s): offline threshold %gs until %.0f",
                        "; ".join(gstate.reasons), cfg.grace_offline_after_seconds,
                        gstate.grace_until or 0)
        self.grace_until = gstate.grace_until
        report.grace_active, report.pipeline_down = gstate.active(now), gstate.pipeline_down

        resolved_conditions = []
        for index, cond in enumerate(self.conditions):
            if index in results:
                resolved_conditions += self.tracker.update(cond, results[index], now)
        self._anomalies(metrics, now, report)
        for server, ratios in _latest_by_server(metrics, queries.HEALTH_METRICS, now).items():
            h = health_of(ratios, yellow_at=cfg.health_yellow_at, red_at=cfg.health_red_at)
            if h is not None:
                report.health[server] = h

        troubled = {a.labels.get("server", "") for a in self.tracker.firing()
                    if a.labels.get("severity") in TROUBLE_SEVERITIES}
        troubled |= {server for (server, _), u in report.anomalies.items() if u.active}
        servers = set(inventory) | set(heartbeats) if inventory else (
            set(self.statuses) | set(heartbeats))
        lenient = gstate.active(now) or gstate.pipeline_down
        threshold = cfg.grace_offline_after_seconds if lenient else cfg.offline_after_seconds
        decided = decide_status(StatusInputs(
            servers=frozenset(servers), heartbeats=heartbeats,
            suspended=frozenset(s for s, v in inventory.items() if v >= 1),
            troubled=frozenset(troubled), now=now, offline_after_seconds=threshold))
        if gstate.pipeline_down:
            # The exporter is down: heartbeats say nothing now. Hold what we knew.
            decided = {s: (self.statuses[s][0] if s in self.statuses else st)
                       for s, st in decided.items()}
        self._transition(decided, now)
        report.statuses = {s: v[0] for s, v in self.statuses.items()}
        self._sync_alerts(now, report)
        self.last_ok_cycle = now

    def _fleet_metrics(self, expr: str, now: float) -> dict[tuple[str, str], list[
            tuple[float, float]]]:
        """Fleet metrics per (server, metric); several points when catching up after a gap."""
        step = self.config.interval_seconds
        last = self.last_ok_cycle
        points = 1
        if last is not None and now - last > 1.5 * step:
            points = min(MAX_CATCHUP_POINTS, int((now - last) // step))
        series = self.client.query_range(expr, now - (points - 1) * step, now, step)
        return {(s.labels["server"], queries.metric_of(s.labels)): s.points
                for s in series if "server" in s.labels}

    def _condition_results(self, now: float) -> dict[int, list[tuple[dict[str, str], float]]]:
        """Every condition's result series; one query, or one per condition if it fails."""
        if not self.conditions:
            return {}
        try:
            samples = self.client.query(queries.conditions(self.conditions), now)
        except PrometheusQueryError as exc:
            log.warning("combined condition query rejected (%s); querying one by one", exc)
            return self._conditions_one_by_one(now)
        out: dict[int, list[tuple[dict[str, str], float]]] = {
            i: [] for i in range(len(self.conditions))}
        for s in samples:
            labels = dict(s.labels)
            index = int(labels.pop(queries.CONDITION_MARKER, "-1"))
            if index in out:
                out[index].append((labels, s.value))
        return out

    def _conditions_one_by_one(self, now: float) -> dict[int, list[tuple[dict[str, str], float]]]:
        out: dict[int, list[tuple[dict[str, str], float]]] = {}
        for i, cond in enumerate(self.conditions):
            try:
                samples: list[Sample] = self.client.query(cond.expr, now)
            except PrometheusQueryError as exc:
                # A broken rule keeps its previous state rather than resolving.
                errors = self.counters.condition_errors
                errors[cond.alert] = errors.get(cond.alert, 0) + 1
                log.error("condition %s: Prometheus rejected its expression: %s",
                          cond.alert, exc.message)
                continue
            out[i] = [(dict(s.labels), s.value) for s in samples]
        return out

    def _anomalies(self, metrics: dict[tuple[str, str], list[tuple[float, float]]], now: float,
                   report: CycleReport) -> None:
        if not self.config.anomalies_enabled:
            return
        wanted = set(self.config.anomaly_metrics)
        for (server, metric), points in metrics.items():
            if metric not in wanted:
                continue
            key = f"{server}\x00{metric}"
            last = self.anomaly_last.get(key, -math.inf)
            update = None
            for ts, value in points:
                if ts > last:
                    update = self.anomalies.observe((server, metric), ts, value)
                    last = ts
            self.anomaly_last[key] = last
            if update is not None:
                report.anomalies[(server, metric)] = update
        # Forget bookkeeping of series not seen for the tracker's eviction horizon.
        horizon = now - self.anomalies.thresholds.evict_after_seconds
        self.anomaly_last = {k: t for k, t in self.anomaly_last.items() if t >= horizon}

    def _transition(self, decided: dict[str, str], now: float) -> None:
        new: dict[str, tuple[str, float]] = {}
        for server, status in decided.items():
            old = self.statuses.get(server)
            since = old[1] if old is not None and old[0] == status else now
            new[server] = (status, since)
            was_offline = old is not None and old[0] == "offline"
            if was_offline and status in ("online", "warning"):
                self.book.add_event(AlertRecord(
                    labels={"alertname": "ServerOnline", "server": server, "severity": "info"},
                    annotations={"summary": f"{server} is back online",
                                 "offline_since": _iso(old[1]) if old else ""},
                    starts_at=now, ends_at=now + self.config.interval_seconds * 4,
                    generator_url=self._generator_url(server)))
            if old is not None and old[0] != status:
                log.info("server %s: %s -> %s", server, old[0], status)
        self.statuses = new

    def _sync_alerts(self, now: float, report: CycleReport) -> None:
        firing: list[AlertRecord] = []
        by_name = {c.alert: c for c in self.conditions}
        for active in self.tracker.firing():
            cond = by_name.get(active.condition)
            if cond is None or active.fired_at is None:
                continue
            firing.append(AlertRecord(
                labels=active.labels, annotations=cond.render_annotations(
                    active.labels, active.value),
                starts_at=active.fired_at,
                generator_url=self._generator_url(active.labels.get("server"))))
        for (server, metric), update in report.anomalies.items():
            if update.active and update.severity is not None:
                firing.append(AlertRecord(
                    labels={"alertname": "MetricAnomaly", "server": server, "metric": metric,
                            "anomaly_severity": update.severity,
                            "severity": "warning" if update.severity == "high" else "info"},
                    annotations={"summary": f"Unusual {metric} on {server}",
                                 "score": f"{update.peak_score:.2f}"},
                    starts_at=update.started_at or now,
                    generator_url=self._generator_url(server)))
        for server, (status, since) in self.statuses.items():
            if status == "offline":
                firing.append(AlertRecord(
                    labels={"alertname": "ServerOffline", "server": server,
                            "severity": "critical"},
                    annotations={"summary": f"{server} is offline (no heartbeat)"},
                    starts_at=since, generator_url=self._generator_url(server)))
        self.book.sync(firing, now)

    def _deliver(self, now: float) -> None:
        if not self.config.receivers:
            return
        horizon = max(4 * self.config.interval_seconds, 300.0)
        result = send_alerts(self.session, self.config.receivers,
                             self.book.payload(now, horizon))
        for url, n in result.sent.items():
            self.counters.alerts_sent[url] = self.counters.alerts_sent.get(url, 0) + n
        for url, n in result.failed.items():
            self.counters.alerts_failed[url] = self.counters.alerts_failed.get(url, 0) + n
        for url, error in result.errors.items():
            log.warning("alerts to %s not delivered (will retry next cycle): %s", url, error)

    def _generator_url(self, server: str | None) -> str:
        base = self.config.external_url
        return f"{base}/api/v1/servers/{quote(server, safe='')}" if server else base + "/"

    def state_path(self) -> Path:
        """Where the state lives."""
        return self.config.state_file

    def snapshot(self) -> dict[str, Any]:
        """JSON view of the last cycle (for the HTTP API)."""
        report = self.report
        if report is None:
            return {"servers": {}}
        return {"time": report.now, "ok": report.ok, "grace_active": report.grace_active,
                "servers": {s: server_view(s, report) for s in report.statuses}}


def server_view(server: str, report: CycleReport) -> dict[str, Any]:
    """One server's status, health breakdown and anomaly scores."""
    h = report.health.get(server)
    return {
        "status": report.statuses.get(server),
        "health": None if h is None else {"color": h.color, "score": h.score,
                                          "worst": h.worst, "components": h.components},
        "anomalies": {m: {"score": u.score, "active": u.active, "severity": u.severity}
                      for (s, m), u in report.anomalies.items() if s == server},
    }


def report_grace_known(engine: Engine, gstate: grace.GraceState) -> bool:
    """Whether this grace period was already announced (log once, not every cycle)."""
    return engine.grace_until == gstate.grace_until


def _latest_by_server(metrics: dict[tuple[str, str], list[tuple[float, float]]],
                      names: tuple[str, ...], now: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (server, metric), points in metrics.items():
        if metric in names and points and points[-1][0] >= now - 1.0:
            out.setdefault(server, {})[metric] = points[-1][1]
    return out


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
