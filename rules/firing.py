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
from rules.pipeline import Problem
from rules.reasons import Why, reason_annotations
from rules.status import pending_overdue


def generator_url(external_url: str, server: str | None) -> str:
    """Where an alert's generatorURL points: the server's page of the engine's API."""
    return (
        f"{external_url}/api/v1/servers/{quote(server, safe='')}" if server else external_url + "/"
    )


def condition_alerts(
    firing: Iterable[ActiveCondition], conditions: Iterable[Condition], external_url: str
) -> list[AlertRecord]:
    """Firing condition instances, annotations rendered with the current value."""
    by_name = {c.alert: c for c in conditions}
    out = []
    for active in firing:
        cond = by_name.get(active.condition)
        if cond is None or active.fired_at is None:
            continue
        out.append(
            AlertRecord(
                labels=active.labels,
                annotations=cond.render_annotations(active.labels, active.value),
                starts_at=active.fired_at,
                generator_url=generator_url(external_url, active.labels.get("server")),
            )
        )
    return out


def anomaly_alerts(
    anomalies: Mapping[tuple[str, str], AnomalyUpdate], now: float, external_url: str
) -> list[AlertRecord]:
    """MetricAnomaly for every active anomaly (severity warning when high, else info)."""
    out = []
    for (server, metric), u in anomalies.items():
        if u.active and u.severity is not None:
            out.append(
                AlertRecord(
                    labels={
                        "alertname": "MetricAnomaly",
                        "server": server,
                        "metric": metric,
                        "anomaly_severity": u.severity,
                        "severity": "warning" if u.severity == "high" else "info",
                    },
                    annotations={
                        "summary": f"Unusual {metric} on {server}",
                        "score": f"{u.peak_score:.2f}",
                    },
                    starts_at=u.started_at or now,
                    generator_url=generator_url(external_url, server),
                )
            )
    return out


Reason = Why


def offline_alerts(
    statuses: Mapping[str, tuple[str, float]],
    external_url: str,
    reasons: Mapping[str, Reason] | None = None,
) -> list[AlertRecord]:
    """ServerOffline for every offline server, starting when it went offline.

    The probe's failure reason is an annotation, not a label: a reason that changes
    (refused, then timeout) must not end one alert and start another.
    """
    out = []
    for server, (status, since) in statuses.items():
        if status != "offline":
            continue
        notes = reason_annotations((reasons or {}).get(server, Why()))
        description = f"{server} stopped answering: {notes['reason_text']}"
        if "last_error" in notes:
            description += f" ({notes['last_error']})"
        out.append(
            AlertRecord(
                labels={"alertname": "ServerOffline", "server": server, "severity": "critical"},
                annotations={
                    "summary": f"{server} is offline ({notes['reason_text']})",
                    "description": description,
                    **notes,
                },
                starts_at=since,
                generator_url=generator_url(external_url, server),
            )
        )
    return out


def unreachable_alerts(
    statuses: Mapping[str, tuple[str, float]],
    observable_since: float,
    now: float,
    timeout_seconds: float,
    external_url: str,
    reasons: Mapping[str, Reason] | None = None,
) -> list[AlertRecord]:
    """ServerUnreachable (warning) for servers still pending after the bound, with the reason.

    Never ServerOffline: a server that was never reached has not gone down; it is
    new, or misconfigured, and the reason says which.
    """
    out = []
    for server, (status, since) in statuses.items():
        if status != "pending" or not pending_overdue(
            since, observable_since, now, timeout_seconds
        ):
            continue
        notes = reason_annotations((reasons or {}).get(server, Why()))
        minutes = timeout_seconds / 60
        description = (
            f"{server} has not been reached since it joined the inventory "
            f"(more than {minutes:g} min): {notes['reason_text']}"
        )
        if "last_error" in notes:
            description += f" ({notes['last_error']})"
        out.append(
            AlertRecord(
                labels={"alertname": "ServerUnreachable", "server": server, "severity": "warning"},
                annotations={
                    "summary": f"{server} was never reached ({notes['reason_text']})",
                    "description": description,
                    **notes,
                },
                starts_at=max(since, observable_since) + timeout_seconds,
                generator_url=generator_url(external_url, server),
            )
        )
    return out


def pipeline_alerts(problems: Iterable[Problem], external_url: str) -> list[AlertRecord]:
    """The engine's own alerts about the pipeline (exporter down, Prometheus unreachable)."""
    return [
        AlertRecord(
            labels=dict(p.labels),
            annotations=dict(p.annotations),
            starts_at=p.since,
            generator_url=external_url + "/",
        )
        for p in problems
    ]


def online_event(
    server: str, offline_since: float, now: float, lasts: float, external_url: str
) -> AlertRecord:
    """The one-shot ServerOnline alert of a server back from offline."""
    return AlertRecord(
        labels={"alertname": "ServerOnline", "server": server, "severity": "info"},
        annotations={
            "summary": f"{server} is back online",
            "offline_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(offline_since)),
        },
        starts_at=now,
        ends_at=now + lasts,
        generator_url=generator_url(external_url, server),
    )
