"""`stacksense-rules backtest`: what the conditions and the detector would have raised.

Over Prometheus history (`query_range` in chunks of at most 10,000 steps, any
window) or over a `timestamp,value` CSV, the same code as the engine decides:
the for-duration state machine of `conditions.py` and the `AnomalyTracker`.
Events are printed in time order; a progress bar goes to stderr on long runs.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rules import queries
from rules.anomaly import AnomalyTracker
from rules.conditions import OPERATORS, Condition, ConditionTracker, load_conditions
from rules.config import ANOMALY_METRICS, ConfigError, load_config
from rules.promapi import PrometheusClient, PrometheusError
from rules.validate import duration

MAX_POINTS_PER_QUERY = 10_000  # Prometheus refuses more than 11,000 points per series


@dataclass(frozen=True, order=True)
class Event:
    """Something that would have happened."""

    time: float
    kind: str  # FIRING, RESOLVED, ANOMALY, ANOMALY_RESOLVED
    name: str
    labels: tuple[tuple[str, str], ...]
    detail: str = ""

    def line(self) -> str:
        """One printable line."""
        labels = " ".join(f"{k}={v}" for k, v in self.labels)
        return f"{_iso(self.time)}  {self.kind:<16} {self.name:<16} {labels} {self.detail}".rstrip()


def parse_time(text: str, now: float) -> float:
    """Unix seconds, ISO 8601, `now`, or `now-6h` / `-6h` relative to now."""
    s = text.strip()
    if s == "now":
        return now
    if s.startswith(("now-", "-")):
        return now - duration(s.removeprefix("now").removeprefix("-"), "time")
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"time: cannot parse {text!r} (unix seconds, ISO 8601, now-6h)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


class Progress:
    """A one-line progress bar on a stream (only drawn when enabled)."""

    def __init__(self, total: int, out: TextIO, enabled: bool) -> None:
        self.total, self.done, self.out, self.enabled = max(total, 1), 0, out, enabled

    def step(self, what: str) -> None:
        """Count one unit of work and redraw."""
        self.done += 1
        if self.enabled:
            filled = int(30 * self.done / self.total)
            self.out.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {what[:40]:<40}"
            )
            if self.done >= self.total:
                self.out.write("\n")
            self.out.flush()


def _chunks(start: float, end: float, step: float) -> list[tuple[float, float]]:
    span = step * (MAX_POINTS_PER_QUERY - 1)
    out, t = [], start
    while t <= end:
        out.append((t, min(end, t + span)))
        t += span + step
    return out


def replay_conditions(
    conditions: Sequence[Condition],
    timelines: Iterable[tuple[Condition, dict[float, list[tuple[dict[str, str], float]]]]],
    times: Sequence[float],
) -> list[Event]:
    """Run the for-duration state machine of each condition over its timeline."""
    del conditions  # the timelines carry their condition
    events: list[Event] = []
    for cond, by_time in timelines:
        tracker = ConditionTracker()
        for t in times:
            before = {k for k, a in tracker.active.items() if a.firing}
            for resolved in tracker.update(cond, by_time.get(t, []), t):
                events.append(_event(t, "RESOLVED", resolved.labels, resolved.value))
            for key, a in tracker.active.items():
                if a.firing and key not in before:
                    events.append(_event(t, "FIRING", a.labels, a.value))
    return events


def _event(t: float, kind: str, labels: dict[str, str], value: float) -> Event:
    rest = tuple(sorted((k, v) for k, v in labels.items() if k != "alertname"))
    return Event(t, kind, labels.get("alertname", ""), rest, f"value={value:.4g}")


def replay_anomalies(
    series: dict[tuple[str, str], list[tuple[float, float]]], label: str = "server"
) -> list[Event]:
    """Feed every (server, metric) series to a fresh tracker; report starts and ends."""
    tracker = AnomalyTracker()
    events: list[Event] = []
    for (server, metric), points in sorted(series.items()):
        for ts, value in points:
            u = tracker.observe((server, metric), ts, value)
            labels = (("metric", metric), (label, server))
            if u.started:
                events.append(
                    Event(
                        ts,
                        "ANOMALY",
                        "MetricAnomaly",
                        labels,
                        f"score={u.score:.2f} value={value:.4g}",
                    )
                )
            if u.resolved:
                events.append(
                    Event(
                        ts,
                        "ANOMALY_RESOLVED",
                        "MetricAnomaly",
                        labels,
                        f"severity={_severity(u.peak_score, tracker)}",
                    )
                )
    return events


def _severity(score: float, tracker: AnomalyTracker) -> str:
    return tracker.severity_of(score)


def backtest_prometheus(
    client: PrometheusClient,
    conditions: Sequence[Condition],
    *,
    start: float,
    end: float,
    step: float,
    anomalies: bool,
    progress: Progress | None = None,
) -> list[Event]:
    """Replay over Prometheus history."""
    chunks = _chunks(start, end, step)
    times = [start + i * step for i in range(int((end - start) // step) + 1)]
    timelines = []
    for cond in conditions:
        by_time: dict[float, list[tuple[dict[str, str], float]]] = {}
        for a, b in chunks:
            for s in client.query_range(cond.expr, a, b, step):
                for t, v in s.points:
                    by_time.setdefault(round(t, 3), []).append((s.labels, v))
            if progress:
                progress.step(cond.alert)
        timelines.append((cond, by_time))
    events = replay_conditions(conditions, timelines, [round(t, 3) for t in times])
    if anomalies:
        series: dict[tuple[str, str], list[tuple[float, float]]] = {}
        exprs = queries.fleet_metric_queries(["network"])
        for a, b in chunks:
            for expr in exprs:
                for s in client.query_range(expr, a, b, step):
                    key = (s.labels.get("server", ""), queries.metric_of(s.labels))
                    if key[1] in ANOMALY_METRICS:
                        series.setdefault(key, []).extend(s.points)
            if progress:
                progress.step("anomalies")
        events += replay_anomalies(series)
    return sorted(events)


def read_csv(path: Path) -> list[tuple[float, float]]:
    """Rows of a `timestamp,value` CSV; errors name the file and line."""
    from rules.detect_csv import parse_timestamp

    rows: list[tuple[float, float]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["timestamp", "value"]:
            raise ConfigError(f"{path}:1: expected a 'timestamp,value' header, got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                value = float(row[1]) if len(row) > 1 else math.nan
                rows.append((parse_timestamp(row[0]), value))
            except (ValueError, IndexError):
                raise ConfigError(
                    f"{path}:{line}: cannot parse timestamp or value in {row!r}"
                ) from None
    return rows


def backtest_csv(
    rows: list[tuple[float, float]],
    conditions: Sequence[Condition],
    metric: str | None,
    *,
    anomalies: bool,
    name: str = "csv",
) -> list[Event]:
    """Replay metric conditions on `metric` and the detector over one CSV series."""
    ops = dict(
        zip(
            OPERATORS,
            (float.__gt__, float.__ge__, float.__lt__, float.__le__, float.__eq__, float.__ne__),
            strict=True,
        )
    )
    labels = {"series": name}
    timelines = []
    for cond in conditions:
        if metric is None or cond.metric != metric or cond.op is None or cond.threshold is None:
            continue
        compare, threshold = ops[cond.op], cond.threshold
        timelines.append(
            (
                cond,
                {t: [(labels, v)] for t, v in rows if math.isfinite(v) and compare(v, threshold)},
            )
        )
    events = replay_conditions(conditions, timelines, [t for t, _ in rows])
    if anomalies:
        events += replay_anomalies({(name, metric or "value"): rows}, label="series")
    return sorted(events)


def add_parser(sub: Any) -> None:
    """Register the `backtest` subcommand."""
    p = sub.add_parser("backtest", help="replay conditions and the detector over history")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")
    src.add_argument("--csv", type=Path, metavar="FILE", help="a timestamp,value CSV")
    p.add_argument("--start", default="now-1h", help="unix, ISO 8601 or now-6h (default)")
    p.add_argument("--end", default="now")
    p.add_argument("--step", default="15s", help="evaluation step (default 15s)")
    p.add_argument("--config", type=Path)
    p.add_argument("--conditions", type=Path, help="conditions file (defaults included)")
    p.add_argument(
        "--metric",
        help="with --csv: the metric the CSV holds, e.g. "
        "stacksense_cpu_usage_ratio, to apply its conditions",
    )
    p.add_argument("--no-anomalies", action="store_true", help="skip the detector")
    p.add_argument("--progress", action="store_true", help="progress bar even if not a tty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute the subcommand; events to `out` (stdout), progress to stderr."""
    out = out or sys.stdout
    cfg = load_config(args.config)
    conds = load_conditions(
        args.conditions or cfg.conditions_file, include_defaults=cfg.include_default_conditions
    )
    if args.csv is not None:
        try:
            rows = read_csv(args.csv)
        except OSError as exc:
            raise ConfigError(f"{args.csv}: cannot read: {exc.strerror or exc}") from None
        events = backtest_csv(
            rows, conds, args.metric, anomalies=not args.no_anomalies, name=args.csv.stem
        )
    else:
        now = time.time()
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        step = duration(args.step, "step")
        if step <= 0 or end < start:
            raise ConfigError("step must be > 0 and end >= start")
        chunks = len(_chunks(start, end, step)) * (len(conds) + (0 if args.no_anomalies else 1))
        progress = Progress(
            chunks, sys.stderr, args.progress or (sys.stderr.isatty() and chunks > 4)
        )
        client = PrometheusClient(args.prometheus, timeout=cfg.prometheus_timeout_seconds)
        try:
            events = backtest_prometheus(
                client,
                conds,
                start=start,
                end=end,
                step=step,
                anomalies=not args.no_anomalies,
                progress=progress,
            )
        except PrometheusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    for event in events:
        out.write(event.line() + "\n")
    firing = sum(1 for e in events if e.kind == "FIRING")
    anomalies = sum(1 for e in events if e.kind == "ANOMALY")
    out.write(f"# {firing} condition alert(s) fired, {anomalies} anomaly(ies) started\n")
    return 0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
