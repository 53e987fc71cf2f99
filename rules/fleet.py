"""Ask Prometheus about the whole fleet in one round of concurrent, vectorised queries.

`fetch` returns everything a cycle decides from; it never decides anything.
The queries are independent, so they run in parallel: Prometheus can use
several cores, and the cycle waits for the slowest query rather than the sum.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rules import queries
from rules.conditions import Condition
from rules.config import EngineConfig
from rules.promapi import PrometheusClient, PrometheusQueryError, Series

log = logging.getLogger(__name__)

QUERY_CONCURRENCY = 4
MAX_CATCHUP_POINTS = 240  # metric points replayed after a gap (1 h at 15 s)

Points = list[tuple[float, float]]
ConditionResults = dict[int, list[tuple[dict[str, str], float]]]


@dataclass
class FleetData:
    """The answers of one round of queries."""

    heartbeats: dict[str, float]  # server -> newest heartbeat (unix seconds)
    inventory: dict[str, float]  # server -> suspended flag (0/1)
    up: list[Series]  # raw `up` samples of the exporter job
    prometheus_start: float | None
    metrics: dict[tuple[str, str], Points]  # (server, metric) -> points, oldest first
    conditions: ConditionResults  # condition index -> result series (absent = not evaluated)
    rejected: list[str] = field(default_factory=list)  # conditions Prometheus rejected
    failures: dict[str, str] = field(default_factory=dict)  # server -> probe failure reason
    # server -> (reason, detail, message) of the last error
    errors: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def fetch(
    client: PrometheusClient,
    config: EngineConfig,
    conditions: Sequence[Condition],
    now: float,
    *,
    up_window: float,
    last_ok: float | None,
) -> FleetData:
    """Run the cycle's queries at `now`; raises PrometheusError when Prometheus fails."""
    hb_window = config.grace_offline_after_seconds + 60.0
    names = sorted(set(queries.HEALTH_METRICS) | set(config.anomaly_metrics))
    start, points = now, 1
    step = config.interval_seconds
    if last_ok is not None and now - last_ok > 1.5 * step:
        # Catch up: the points missed while Prometheus (or the engine) was away.
        points = min(MAX_CATCHUP_POINTS, int((now - last_ok) // step))
        start = now - (points - 1) * step
    rejected: list[str] = []
    with ThreadPoolExecutor(max_workers=QUERY_CONCURRENCY) as pool:
        f_hb_inv = pool.submit(client.query, queries.heartbeats_and_inventory(hb_window), now)
        f_up = pool.submit(
            client.query_matrix, queries.exporter_up(config.exporter_job, up_window), now
        )
        f_start = pool.submit(client.query, queries.prometheus_start(config.prometheus_job), now)
        f_metrics = [
            pool.submit(client.query_range, q, start, now, step)
            for q in queries.fleet_metric_queries(names)
        ]
        f_cond = pool.submit(_conditions, client, conditions, now, rejected)
        heartbeats: dict[str, float] = {}
        inventory: dict[str, float] = {}
        failures: dict[str, str] = {}
        errors: dict[str, tuple[str, str, str]] = {}
        scrape_failed: set[str] = set()
        for s in f_hb_inv.result():
            server, part = s.labels.get("server"), s.labels.get(queries.PART_MARKER)
            if server is None:
                continue
            if part == "inventory":
                inventory[server] = s.value
            elif part == "heartbeat" and math.isfinite(s.value) and s.value > 0:
                heartbeats[server] = s.value
            elif part == "failure":
                # Several exporter replicas may disagree: the same pick every cycle.
                reason = s.labels.get("reason", "")
                failures[server] = min(failures.get(server, reason), reason)
            elif part == "error":
                errors[server] = (
                    s.labels.get("reason", ""),
                    s.labels.get("detail", ""),
                    s.labels.get("message", ""),
                )
            elif part == "scrape_failed":
                scrape_failed.add(server)
        for server in scrape_failed:
            failures.setdefault(server, "scrape_failed")
        started = f_start.result()
        metrics = {
            (s.labels["server"], queries.metric_of(s.labels)): s.points
            for f in f_metrics
            for s in f.result()
            if "server" in s.labels
        }
        return FleetData(
            heartbeats,
            inventory,
            f_up.result(),
            started[0].value if started else None,
            metrics,
            f_cond.result(),
            rejected,
            failures,
            errors,
        )


def _conditions(
    client: PrometheusClient, conditions: Sequence[Condition], now: float, rejected: list[str]
) -> ConditionResults:
    """Every condition's result series: one query, or one per condition if it is rejected."""
    if not conditions:
        return {}
    try:
        samples = client.query(queries.conditions(conditions), now)
    except PrometheusQueryError as exc:
        log.warning("combined condition query rejected (%s); querying one by one", exc)
        return _one_by_one(client, conditions, now, rejected)
    out: ConditionResults = {i: [] for i in range(len(conditions))}
    for s in samples:
        labels = dict(s.labels)
        index = int(labels.pop(queries.CONDITION_MARKER, "-1"))
        if index in out:
            out[index].append((labels, s.value))
    return out


def _one_by_one(
    client: PrometheusClient, conditions: Sequence[Condition], now: float, rejected: list[str]
) -> ConditionResults:
    out: ConditionResults = {}
    for i, cond in enumerate(conditions):
        try:
            samples = client.query(cond.expr, now)
        except PrometheusQueryError as exc:
            # Left out of the result: a broken rule keeps its state rather than resolving.
            rejected.append(cond.alert)
            log.error(
                "condition %s: Prometheus rejected its expression: %s", cond.alert, exc.message
            )
            continue
        out[i] = [(dict(s.labels), s.value) for s in samples]
    return out
