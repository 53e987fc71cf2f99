"""What the engine's decisions mean as alerts: one builder per kind of alert.

Pure functions from decisions (firing conditions, anomalies, statuses) to
`AlertRecord`s; the alert book (alerts.py) handles their lifecycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from rules.alerts import AlertRecord
from rules.anomaly import AnomalyUpdate
from rules.conditions import ActiveCondition, Condition


def generator_url(external_url: str, server: str | None) -> str:
    """Where an alert's generatorURL points: the server's page of the engine's API."""
    return f"{external_url}/api/v1/servers/{quote(server, safe='')}" if server else \
        external_url + "/"


def condition_alerts(firing: Iterable[ActiveCondition], conditions: Iterable[Condition],
                     external_url: str) -> list[AlertRecord]:
    """Firing condition instances, annotations rendered with the current value."""
    by_name = {c.alert: c for c in conditions}
    out = []
    for active in firing:
        cond = by_name.get(active.condition)
        if cond is None or active.fired_at is None:
            continue
        out.append(AlertRecord(
            labels=active.labels,
            annotations=cond.render_annotations(active.labels, active.value),
            starts_at=active.fired_at,
            generator_url=generator_url(external_url, active.labels.get("server"))))
    return out


def anomaly_alerts(anomalies: Mapping[tuple[str, str], AnomalyUpdate], now: float,
                   external_url: str) -> list[AlertRecord]:
    """MetricAnomaly for every active anomaly (severity warning when high, else info)."""
    out = []
    for (server, metric), u in anomalies.items():
        if u.active and u.severity is not None:
            out.append(AlertRecord(
                labels={"alertname": "MetricAnomaly", "server": server, "metric": metric,
                        "anomaly_severity": u.severity,
                        "severity": "warning" if u.severity == "high" else "info"},
                annotations={"summary": f"Unusual {metric} on {server}",
                             "score": f"{u.peak_score:.2f}"},
                starts_at=u.started_at or now,
                generator_url=generator_url(external_url, server)))
    return out


def offline_alerts(statuses: Mapping[str, tuple[str, float]],
                   external_url: str) -> list[AlertRecord]:
    """ServerOffline for every offline server, starting when it went offline."""
    return [AlertRecord(
        labels={"alertname": "ServerOffline", "server": server, "severity": "critical"},
        annotations={"summary": f"{server} is offline (no heartbeat)"},
        starts_at=since, generator_url=generator_url(external_url, server))
        for server, (status, since) in statuses.items() if status == "offline"]


def online_event(server: str, offline_since: float, now: float, lasts: float,
                 external_url: str) -> AlertRecord:
    """The one-shot ServerOnline alert of a server back from offline."""
    return AlertRecord(
        labels={"alertname": "ServerOnline", "server": server, "severity": "info"},
        annotations={"summary": f"{server} is back online",
                     "offline_since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(offline_since))},
        starts_at=now, ends_at=now + lasts, generator_url=generator_url(external_url, server))
