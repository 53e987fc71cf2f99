"""The engine's /metrics: a custom collector built fresh from the last cycle on every scrape.

The reload gauges (stacksense_common.ops.ReloadGauges) and the HTTP metrics
(stacksense_common.http_metrics) sit beside it on the service's registry (rules.server).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.engine import Engine
from rules.health import COLORS
from rules.status import STATUSES


class EngineCollector(Collector):
    """Publishes what the engine decided and how its cycles went."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """Yield fresh families from the engine's last report and counters."""
        engine = self.engine
        # No lock: a long cycle must never stall a scrape; the report is swapped whole.
        report = engine.report
        counters = engine.counters
        client = engine.client
        status = GaugeMetricFamily(
            "stacksense_server_status",
            "Server status as a state set (1 = current).",
            labels=["server", "status"],
        )
        score = GaugeMetricFamily(
            "stacksense_server_health_score",
            "Health score 0-100: headroom left on the most loaded resource.",
            labels=["server"],
        )
        color = GaugeMetricFamily(
            "stacksense_server_health",
            "Health colour as a state set (1 = current).",
            labels=["server", "color"],
        )
        component = GaugeMetricFamily(
            "stacksense_server_health_component_score",
            "Health score 0-100 per monitored resource.",
            labels=["server", "component"],
        )
        anomaly = GaugeMetricFamily(
            "stacksense_anomaly_score",
            "Latest anomaly score 0-1 per server and metric.",
            labels=["server", "metric"],
        )
        anomaly_active = GaugeMetricFamily(
            "stacksense_anomaly_active",
            "1 while an anomaly is active.",
            labels=["server", "metric", "severity"],
        )
        firing = GaugeMetricFamily(
            "stacksense_condition_firing",
            "Firing condition instances.",
            labels=["server", "alertname", "severity"],
        )
        if report is not None:
            for server, current in sorted(report.statuses.items()):
                for name in STATUSES:
                    status.add_metric([server, name], 1.0 if name == current else 0.0)
            for server, h in sorted(report.health.items()):
                score.add_metric([server], h.score)
                for name in COLORS:
                    color.add_metric([server, name], 1.0 if name == h.color else 0.0)
                for comp, value in h.components.items():
                    component.add_metric([server, comp], value)
            for (server, metric), u in sorted(report.anomalies.items()):
                anomaly.add_metric([server, metric], u.score)
                if u.active and u.severity:
                    anomaly_active.add_metric([server, metric, u.severity], 1.0)
            for key, n in sorted(report.firing_conditions.items()):
                firing.add_metric(list(key), float(n))
        yield from (status, score, color, component, anomaly, anomaly_active, firing)

        yield _gauge(
            "stacksense_rules_cycle_duration_seconds",
            "Wall time of the last cycle.",
            report.duration_seconds if report else 0.0,
        )
        yield _gauge(
            "stacksense_rules_cycle_queries",
            "Prometheus queries made by the last cycle.",
            float(report.queries) if report else 0.0,
        )
        yield _gauge(
            "stacksense_rules_last_cycle_timestamp_seconds",
            "Evaluation time of the last cycle.",
            report.now if report else 0.0,
        )
        yield _gauge(
            "stacksense_rules_prometheus_up",
            "1 if the last cycle could query Prometheus.",
            1.0 if report is not None and report.ok else 0.0,
        )
        yield _gauge(
            "stacksense_rules_grace_active",
            "1 while the lenient offline threshold applies after an outage.",
            1.0 if report is not None and report.grace_active else 0.0,
        )
        yield _gauge(
            "stacksense_rules_pipeline_down",
            "1 while the exporter or Prometheus cannot see: every status unknown.",
            1.0 if report is not None and report.pipeline_down else 0.0,
        )
        yield _gauge(
            "stacksense_rules_exporter_up",
            "1 if the last cycle saw a healthy, recent exporter `up` sample.",
            1.0 if report is not None and report.exporter_up else 0.0,
        )
        yield _gauge(
            "stacksense_rules_interval_seconds",
            "Configured time between cycles (for staleness rules).",
            engine.config.interval_seconds,
        )
        yield _gauge(
            "stacksense_rules_last_successful_cycle_timestamp_seconds",
            "Evaluation time of the last cycle that could query Prometheus.",
            engine.last_ok_cycle or 0.0,
        )
        observable = report.observable_since if report is not None else None
        yield _gauge(
            "stacksense_rules_observable_since_timestamp_seconds",
            "Since when the pipeline could see the servers (staleness is judged from here).",
            observable if observable is not None and observable > 0 else 0.0,
        )
        problems = GaugeMetricFamily(
            "stacksense_rules_pipeline_problem",
            "Pipeline problems the engine alerts on by itself (1 while seen).",
            labels=["alertname", "instance"],
        )
        for p in list(engine.watch.problems.values()):
            problems.add_metric([p.labels.get("alertname", ""), p.labels.get("instance", "")], 1.0)
        yield problems
        yield _counter("stacksense_rules_cycles", "Cycles run.", counters.cycles)
        yield _counter(
            "stacksense_rules_failed_cycles",
            "Cycles that could not query Prometheus.",
            counters.failed_cycles,
        )
        yield _counter(
            "stacksense_rules_prometheus_queries", "Queries sent to Prometheus.", client.queries
        )
        yield _counter(
            "stacksense_rules_prometheus_errors",
            "Prometheus queries that failed after retries.",
            client.errors,
        )
        sent = CounterMetricFamily(
            "stacksense_rules_alerts_sent", "Alerts accepted by a receiver.", labels=["receiver"]
        )
        failed = CounterMetricFamily(
            "stacksense_rules_alerts_failed",
            "Alerts a receiver did not accept.",
            labels=["receiver"],
        )
        for r in engine.config.receivers:
            sent.add_metric([r.url], float(counters.alerts_sent.get(r.url, 0)))
            failed.add_metric([r.url], float(counters.alerts_failed.get(r.url, 0)))
        errors = CounterMetricFamily(
            "stacksense_rules_condition_errors",
            "Evaluations of a condition Prometheus rejected.",
            labels=["alertname"],
        )
        for name, n in sorted(counters.condition_errors.items()):
            errors.add_metric([name], float(n))
        yield from (sent, failed, errors)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))
