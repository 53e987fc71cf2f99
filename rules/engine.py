"""One evaluation cycle for the whole fleet: query, decide, alert, persist.

`Engine.run_cycle(now)` runs six fleet-wide queries concurrently (fleet.py:
heartbeats with the inventory and probe failures, exporter `up` history,
Prometheus start time, usage ratios, network, conditions), then decides
status, grace, health, conditions
and anomalies in Python, hands the firing alerts to the alert book, sends
them, and saves its state. The clock is passed in, so tests and backtests
evaluate any instant of history.

When the pipeline cannot see (Prometheus cannot be asked, or the exporter is
down or stale), every server is `unknown`, its alerts are kept exactly as they
were, and the engine raises its own pipeline alert, which it delivers without
Prometheus. The fleet is never declared offline for want of an answer, and a
heartbeat is judged stale only against the time since the pipeline could see
(pipeline.py), so the pipeline's return is no ServerOffline storm.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from rules import firing, fleet, grace, pipeline, queries, reasons
from rules.alerts import AlertBook, send_alerts
from rules.anomaly import AnomalyTracker, AnomalyUpdate
from rules.conditions import Condition, ConditionTracker
from rules.config import ConfigError, EngineConfig
from rules.detector import params_from_dict
from rules.health import Health, health_of
from rules.promapi import PrometheusClient, PrometheusError
from rules.state_file import load_state, save_state
from rules.status import StatusInputs, decide_status

STATUS_ALERTS = frozenset({"ServerOffline", "ServerUnreachable"})

log = logging.getLogger(__name__)

TROUBLE_SEVERITIES = frozenset({"critical", "warning"})
HISTORY_LENGTH = 20  # status changes remembered per server


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
    pipeline_down: bool = False  # the exporter or Prometheus cannot see: statuses unknown
    exporter_up: bool = False
    observable_since: float | None = None
    since: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, firing.Reason] = field(default_factory=dict)
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

    def __init__(
        self,
        config: EngineConfig,
        conditions: list[Condition],
        *,
        session: requests.Session | None = None,
        client: PrometheusClient | None = None,
    ) -> None:
        self.session = session or requests.Session()
        self.lock = threading.Lock()
        self.counters = Counters()
        self.report: CycleReport | None = None
        self._apply(config, conditions, client)
        self._load()

    def _apply(
        self,
        config: EngineConfig,
        conditions: list[Condition],
        client: PrometheusClient | None = None,
    ) -> None:
        token_file = config.prometheus_bearer_token_file
        self.config = config
        self.conditions = conditions
        previous: PrometheusClient | None = getattr(self, "client", None)
        try:
            token = token_file.read_text().strip() if token_file else None
        except OSError as exc:
            raise ConfigError(
                f"prometheus.bearer_token_file: cannot read {token_file}: {exc.strerror or exc}"
            ) from None
        self.client = client or PrometheusClient(
            config.prometheus_url,
            session=self.session,
            timeout=config.prometheus_timeout_seconds,
            retries=config.prometheus_retries,
            bearer_token=token,
        )
        if previous is not None:  # counters are monotonic across reloads
            self.client.queries, self.client.errors = previous.queries, previous.errors
        self.grace_settings = grace.GraceSettings(
            outage_threshold_seconds=config.outage_threshold_seconds,
            grace_period_seconds=config.grace_period_seconds,
            stale_after_seconds=config.offline_after_seconds,
        )

    def reload(self, config: EngineConfig, conditions: list[Condition]) -> None:
        """Swap configuration and conditions at once; state of removed conditions is dropped."""
        with self.lock:
            self._apply(config, conditions)
            self.tracker.forget_missing({c.alert for c in conditions})
            self.book.resolved_resend_seconds = config.resolved_resend_seconds

    def _load(self) -> None:
        raw = load_state(self.config.state_file)
        self.statuses: dict[str, tuple[str, float]] = {
            s: (str(v[0]), float(v[1])) for s, v in raw.get("statuses", {}).items()
        }
        # The last HISTORY_LENGTH status changes per server: [unix time, status].
        self.history: dict[str, list[list[Any]]] = {
            s: list(h) for s, h in raw.get("history", {}).items() if isinstance(h, list)
        }
        self.tracker = ConditionTracker.from_state(raw.get("conditions"))
        self.book = AlertBook.from_state(raw.get("alerts"), self.config.resolved_resend_seconds)
        # The detectors' state is large (KBs per series): it lives in its own file,
        # written every `anomaly_save_interval` and on shutdown, not every cycle.
        anomaly_state = load_state(self.anomaly_state_path())
        self.anomalies = AnomalyTracker.from_state(
            anomaly_state.get("tracker") or {}, params=params_from_dict(self.config.detector_params)
        )
        self.anomaly_last: dict[str, float] = dict(anomaly_state.get("last", {}))
        self.anomalies_saved_at: float | None = anomaly_state.get("saved_at")
        self.last_cycle: float | None = raw.get("last_cycle")
        # Whether this fleet was watched before this process started (grace.py).
        self.monitored_before = self.last_cycle is not None
        self.grace_until: float | None = raw.get("grace_until")
        self.last_ok_cycle: float | None = raw.get("last_ok_cycle")
        # The last status other than unknown: what a server returns to after an outage.
        # (status, since): a return from unknown to the same status keeps its since.
        self.known: dict[str, tuple[str, float]] = {
            s: (str(v[0]), float(v[1]))
            for s, v in raw.get("known", {}).items()
            if isinstance(v, list) and len(v) == 2
        }
        # Servers the engine has seen a heartbeat of: only these can go offline. A state
        # written before this was kept: a server it knew online/warning/offline was reached.
        self.reached: set[str] = {
            str(s)
            for s in raw.get(
                "reached",
                [
                    s
                    for s, (st, _) in self.statuses.items()
                    if st in ("online", "warning", "offline")
                ],
            )
        }
        if "known" not in raw:
            self.known.update({s: v for s, v in self.statuses.items() if s in self.reached})
        # Start of the engine's current run of successful cycles.
        self.observing_since: float | None = raw.get("observing_since")
        self.watch = pipeline.PipelineWatch.from_state(raw.get("pipeline"))

    def _save(self) -> None:
        save_state(
            self.config.state_file,
            {
                "statuses": {s: list(v) for s, v in self.statuses.items()},
                "history": self.history,
                "conditions": self.tracker.get_state(),
                "alerts": self.book.get_state(),
                "last_cycle": self.last_cycle,
                "grace_until": self.grace_until,
                "last_ok_cycle": self.last_ok_cycle,
                "known": {s: list(v) for s, v in self.known.items()},
                "reached": sorted(self.reached),
                "observing_since": self.observing_since,
                "pipeline": self.watch.get_state(),
            },
        )

    def anomaly_state_path(self) -> Path:
        """Where the detectors' state lives (next to the main state file)."""
        path = self.config.state_file
        return path.with_name(path.name + ".anomalies")

    def save_anomalies(self, now: float | None = None) -> None:
        """Write the detectors' state (periodically, and on shutdown)."""
        with self.lock:
            saved_at = time.time() if now is None else now
            save_state(
                self.anomaly_state_path(),
                {
                    "tracker": self.anomalies.get_state(),
                    "last": self.anomaly_last,
                    "saved_at": saved_at,
                },
            )
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
                report.ok, report.error = False, redact(str(exc))
                self.counters.failed_cycles += 1
                log.error(
                    "cycle at %.0f: cannot query Prometheus, every server unknown: %s",
                    now,
                    report.error,
                )
                self._blind(now, report, exc)
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
        data = fleet.fetch(
            self.client,
            cfg,
            self.conditions,
            now,
            up_window=self.grace_settings.window_seconds,
            last_ok=self.last_ok_cycle,
        )
        for name in data.rejected:
            errors = self.counters.condition_errors
            errors[name] = errors.get(name, 0) + 1
        heartbeats, inventory, metrics = data.heartbeats, data.inventory, data.metrics

        gstate = grace.GraceState(grace_until=self.grace_until)
        grace.from_engine_downtime(self.last_cycle, now, self.grace_settings, gstate)
        grace.from_up_history(
            data.up, now, self.grace_settings, gstate, monitored_before=self.monitored_before
        )
        if self.monitored_before:  # a fresh Prometheus on a first start is no outage
            grace.from_prometheus_start(
                data.prometheus_start, bool(data.up), now, self.grace_settings, gstate
            )
        if gstate.reasons and gstate.active(now) and not report_grace_known(self, gstate):
            log.warning(
                "monitoring outage detected (%s): offline threshold %gs until %.0f",
                "; ".join(gstate.reasons),
                cfg.grace_offline_after_seconds,
                gstate.grace_until or 0,
            )
        self.grace_until = gstate.grace_until
        report.grace_active = gstate.active(now)

        exporter = pipeline.exporter_view(data.up, now, cfg.exporter_job)
        if (
            self.observing_since is None
            or self.last_ok_cycle is None
            or now - self.last_ok_cycle > self.engine_gap_seconds()
        ):
            self.observing_since = now  # the engine itself was not looking before this
        # A start after `now` belongs to a later instant than the one evaluated (backtests).
        started = data.prometheus_start
        observable = pipeline.observable_since(
            self.observing_since,
            started if started is not None and started <= now else None,
            exporter.observable_since,
        )
        report.exporter_up, report.pipeline_down = exporter.healthy_now, not exporter.healthy_now
        report.observable_since = observable
        self.watch.update(
            [
                exporter_problem(cfg.exporter_job, instance, why, exporter.healthy_now)
                for instance, why in sorted(exporter.down.items())
            ],
            now,
        )
        if not exporter.healthy_now and not self.report_pipeline_down():
            log.error(
                "exporter job %s down or stale (%s): every server unknown",
                cfg.exporter_job,
                "; ".join(exporter.down.values()),
            )

        if inventory:
            # The inventory is authoritative: a server removed from it is gone, even if
            # its last heartbeat is still within the query window.
            servers = set(inventory)
        elif not exporter.healthy_now:
            # The inventory went stale with the exporter: the servers known before.
            servers = set(self.statuses) or set(heartbeats)
        else:  # no inventory series at all (exporter's /metrics not scraped?)
            servers = set(self.statuses) | set(heartbeats)
        gone = set(self.statuses) - servers
        if gone:
            self.tracker.forget_servers(gone)
        self.reached = {s for s in self.reached if s in servers} | (set(heartbeats) & servers)
        self.known = {s: st for s, st in self.known.items() if s in servers}

        threshold = (
            cfg.grace_offline_after_seconds if gstate.active(now) else cfg.offline_after_seconds
        )
        inputs = StatusInputs(
            servers=frozenset(servers),
            heartbeats=heartbeats,
            suspended=frozenset(s for s, v in inventory.items() if v >= 1),
            troubled=frozenset(),
            now=now,
            offline_after_seconds=threshold,
            reached=frozenset(self.reached),
            observable_since=observable,
            pipeline_ok=exporter.healthy_now,
            previous={s: v[0] for s, v in self.known.items()},
        )
        fresh = {s for s, hb in heartbeats.items() if now - hb <= threshold}
        # A collector that could not parse is still a contact with fresh series.
        failing = {s for s, reason in data.failures.items() if reason != "parse"}
        # Servers whose series say nothing now keep their conditions and anomalies as
        # they were (no false "resolved") until fresh data about them decides: those
        # not heard from within the threshold, and those whose latest probe failed (its
        # series vanished at once, while the last heartbeat still looks fresh).
        frozen = frozenset(
            s
            for s in servers
            if not exporter.healthy_now
            or (s not in inputs.suspended and (s not in fresh or s in failing))
        )

        for index, cond in enumerate(self.conditions):
            if index in data.conditions:
                self.tracker.update(cond, data.conditions[index], now, frozen)
        self._anomalies(metrics, now, report)
        if inventory:
            report.anomalies = {k: u for k, u in report.anomalies.items() if k[0] in servers}
        if self.report is not None:
            for key, update in self.report.anomalies.items():
                if key[0] in frozen:
                    report.anomalies.setdefault(key, update)
        for server, ratios in _latest_by_server(metrics, queries.HEALTH_METRICS, now).items():
            h = health_of(ratios, yellow_at=cfg.health_yellow_at, red_at=cfg.health_red_at)
            if h is not None:
                report.health[server] = h

        troubled = {
            a.labels.get("server", "")
            for a in self.tracker.firing()
            if a.labels.get("severity") in TROUBLE_SEVERITIES
        }
        troubled |= {server for (server, _), u in report.anomalies.items() if u.active}
        decided = decide_status(replace(inputs, troubled=frozenset(troubled)))
        self._transition(decided, now)
        report.reasons = {
            s: reasons.pick(data.failures, data.errors, s)
            for s in servers
            if s not in fresh or s in data.failures
        }
        self._report_statuses(report)
        self._sync_alerts(now, report, frozen)
        self.last_ok_cycle = now

    def _blind(self, now: float, report: CycleReport, exc: PrometheusError) -> None:
        """A cycle that could not query Prometheus: every server unknown, alerts as they were."""
        self.watch.update([prometheus_problem(str(exc))], now, keep_unseen=True)
        report.pipeline_down = True
        self._transition({s: "unknown" for s in self.statuses}, now)
        if self.report is not None:
            report.health, report.anomalies = self.report.health, self.report.anomalies
            report.reasons = self.report.reasons
            report.grace_active = self.report.grace_active
        self._report_statuses(report)
        self._sync_alerts(now, report, frozenset(self.statuses))

    def _report_statuses(self, report: CycleReport) -> None:
        report.statuses = {s: v[0] for s, v in self.statuses.items()}
        report.since = {s: v[1] for s, v in self.statuses.items()}

    def report_pipeline_down(self) -> bool:
        """Whether the previous cycle already had the pipeline down (log once)."""
        return self.report is not None and self.report.pipeline_down

    def engine_gap_seconds(self) -> float:
        """A gap between successful cycles longer than this: the engine was not looking."""
        return max(3 * self.config.interval_seconds, 30.0)

    def _anomalies(
        self,
        metrics: dict[tuple[str, str], list[tuple[float, float]]],
        now: float,
        report: CycleReport,
    ) -> None:
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
            known = self.known.get(server)
            if old is not None and old[0] == status:
                since = old[1]
            elif old is not None and old[0] == "unknown" and known and known[0] == status:
                since = known[1]  # back to what it was before the pipeline went blind
            else:
                since = now
            new[server] = (status, since)
            # Back from offline, even through a spell of unknown: one ServerOnline.
            if known and known[0] == "offline" and status in ("online", "warning"):
                self.book.add_event(
                    firing.online_event(
                        server,
                        known[1],
                        now,
                        4 * self.config.interval_seconds,
                        self.config.external_url,
                    )
                )
            if status != "unknown":
                self.known[server] = (status, since)
            if old is None or old[0] != status:
                if old is not None:
                    log.info("server %s: %s -> %s", server, old[0], status)
                changes = self.history.setdefault(server, [])
                changes.append([now, status])
                del changes[:-HISTORY_LENGTH]
        self.statuses = new
        for server in [s for s in self.history if s not in new]:
            del self.history[server]

    def _sync_alerts(self, now: float, report: CycleReport, frozen: frozenset[str]) -> None:
        url = self.config.external_url
        cfg = self.config
        observable = report.observable_since
        computed = (
            firing.condition_alerts(self.tracker.firing(), self.conditions, url)
            + firing.anomaly_alerts(report.anomalies, now, url)
            + firing.offline_alerts(self.statuses, url, report.reasons)
            + firing.unreachable_alerts(
                self.statuses,
                observable if observable is not None else now,
                now,
                cfg.pending_timeout_seconds,
                url,
                report.reasons,
            )
            + firing.pipeline_alerts(self.watch.due(now, cfg.pipeline_alert_after_seconds), url)
        )
        # What the engine cannot re-decide now stays exactly as it was: the condition and
        # anomaly alerts of frozen servers, every alert of an unknown server, and the
        # ServerUnreachable of a server still pending (its bound restarts after an outage).
        names = {c.alert for c in self.conditions} | {"MetricAnomaly"}
        carried = []
        for r in self.book.records.values():
            server, name = r.labels.get("server", ""), r.labels.get("alertname")
            if r.ends_at is not None or r.event or server not in self.statuses:
                continue
            status = report.statuses.get(server)
            if (
                (server in frozen and name in names)
                or (status == "unknown" and name in STATUS_ALERTS)
                or (status == "pending" and name == "ServerUnreachable")
            ):
                carried.append(r)
        self.book.sync(carried + computed, now)

    def _deliver(self, now: float) -> None:
        if not self.config.receivers:
            return
        horizon = max(4 * self.config.interval_seconds, 300.0)
        result = send_alerts(self.session, self.config.receivers, self.book.payload(now, horizon))
        for url, n in result.sent.items():
            self.counters.alerts_sent[url] = self.counters.alerts_sent.get(url, 0) + n
        for url, n in result.failed.items():
            self.counters.alerts_failed[url] = self.counters.alerts_failed.get(url, 0) + n
        for url, error in result.errors.items():
            log.warning("alerts to %s not delivered (will retry next cycle): %s", url, error)


def exporter_problem(
    job: str, instance: str, why: str, others_up: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """StackSenseExporterDown for one exporter replica (or for a job with no `up` at all)."""
    labels = {"alertname": "StackSenseExporterDown", "severity": "critical", "job": job}
    if instance:
        labels["instance"] = instance
    effect = (
        "other replicas still answer"
        if others_up
        else "every server's status is unknown until it is back (no ServerOffline meanwhile)"
    )
    name = instance or job
    return labels, {
        "summary": f"StackSense exporter {name} is down",
        "description": f"The rule engine sees {why}; {effect}.",
    }


def redact(error: str) -> str:
    """An error text fit for logs and alerts.

    A URL may carry credentials (http://user:pass@host): never shown. Object
    addresses would make the text differ every cycle.
    """
    error = re.sub(r"//[^/@\s]*@", "//", error)
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "<connection>", error)


def prometheus_problem(error: str) -> tuple[dict[str, str], dict[str, str]]:
    """StackSensePrometheusUnreachable: the engine's queries fail."""
    error = redact(error)[:300]
    return (
        {"alertname": "StackSensePrometheusUnreachable", "severity": "critical"},
        {
            "summary": "The StackSense rule engine cannot query Prometheus",
            "description": f"{error}. Every server's status is unknown until Prometheus "
            "answers again (no ServerOffline meanwhile).",
        },
    )


def report_grace_known(engine: Engine, gstate: grace.GraceState) -> bool:
    """Whether this grace period was already announced (log once, not every cycle)."""
    return engine.grace_until == gstate.grace_until


def _latest_by_server(
    metrics: dict[tuple[str, str], list[tuple[float, float]]], names: tuple[str, ...], now: float
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (server, metric), points in metrics.items():
        if metric in names and points and points[-1][0] >= now - 1.0:
            out.setdefault(server, {})[metric] = points[-1][1]
    return out
