"""Whether the monitoring pipeline can see the servers now, and since when.

Two questions, answered from data the engine already has:

* Can the pipeline see *now*? No when Prometheus cannot be queried, or when no
  exporter replica has a healthy, recent `up` sample (its latest sample is 0,
  or older than two scrape intervals plus 5 s, or there is no `up` series at
  all). Then every server is `unknown`, and the engine raises its own pipeline
  alerts (it does not need Prometheus to send them).
* Since when could it see? `observable_since` is the latest of: the start of
  the exporter's current run of healthy `up` samples (a gap in the samples is
  a Prometheus outage, a 0 an exporter outage), Prometheus' start time, and the
  start of the engine's own current run of successful cycles. A heartbeat is
  judged stale only against max(heartbeat, observable_since): nobody can have
  seen a server during an outage of the pipeline itself.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.conditions import label_key
from rules.promapi import Series

STALE_SLACK_SECONDS = 5.0
DEFAULT_SCRAPE_INTERVAL = 15.0  # when a series has a single sample to measure it from


@dataclass(frozen=True)
class ExporterView:
    """The exporter job's `up` as the engine reads it at one instant."""

    healthy_now: bool  # at least one replica scraped healthy recently
    down: dict[str, str]  # instance -> why it is down or stale (instance "" = no series at all)
    observable_since: float | None  # start of the current healthy run (None when not healthy)


def scrape_interval(points: Sequence[tuple[float, float]]) -> float:
    """The series' scrape interval: the median spacing of its samples."""
    if len(points) < 2:
        return DEFAULT_SCRAPE_INTERVAL
    return statistics.median(b[0] - a[0] for a, b in zip(points, points[1:], strict=False))


def exporter_view(up: Sequence[Series], now: float, job: str) -> ExporterView:
    """Read the exporter replicas' raw `up` samples (oldest first)."""
    down: dict[str, str] = {}
    runs: list[float] = []
    for series in up:
        instance = series.labels.get("instance", "?")
        points = [(t, v) for t, v in series.points if t <= now]
        if not points:
            continue
        spacing = scrape_interval(points)
        latest_t, latest_v = points[-1]
        age = now - latest_t
        if latest_v < 1.0:
            healthy = [t for t, v in points if v >= 1.0]
            failing = f"{now - healthy[-1]:.0f}s" if healthy else "the whole window"
            down[instance] = f"its up is 0 (scrapes failing for {failing})"
            continue
        if age > 2 * spacing + STALE_SLACK_SECONDS:
            down[instance] = f"no up sample for {age:.0f}s (scrape interval {spacing:g}s)"
            continue
        runs.append(run_start(points, spacing))
    if not runs and not down:
        down[""] = f'no up{{job="{job}"}} series in Prometheus'
    return ExporterView(
        healthy_now=bool(runs), down=down, observable_since=min(runs) if runs else None
    )


def run_start(points: Sequence[tuple[float, float]], spacing: float) -> float:
    """When the current run of healthy samples began (walking back from the latest).

    A sample that is 0, or a gap longer than twice the scrape interval (and at
    least 5 s more than one interval), ends the walk: the pipeline was blind there.
    """
    max_gap = max(2 * spacing, spacing + STALE_SLACK_SECONDS)
    start = points[-1][0]
    for (t0, v0), (t1, _v1) in zip(reversed(points[:-1]), reversed(points[1:]), strict=False):
        if v0 < 1.0 or t1 - t0 > max_gap:
            break
        start = t0
    return start


def observable_since(*starts: float | None) -> float:
    """The latest of the known starts (-inf when none is known)."""
    known = [s for s in starts if s is not None]
    return max(known) if known else -math.inf


@dataclass
class Problem:
    """One pipeline problem the engine alerts on by itself."""

    labels: dict[str, str]  # alertname, severity and what identifies the problem
    annotations: dict[str, str]
    since: float


@dataclass
class PipelineWatch:
    """The pipeline problems seen, each with the time it was first seen (kept in the state)."""

    problems: dict[str, Problem] = field(default_factory=dict)

    def update(
        self,
        current: Sequence[tuple[dict[str, str], dict[str, str]]],
        now: float,
        *,
        keep_unseen: bool = False,
    ) -> None:
        """Set the problems seen now; `keep_unseen` keeps the others (they cannot be checked)."""
        seen: dict[str, Problem] = {}
        for labels, notes in current:
            key = label_key(labels)
            old = self.problems.get(key)
            seen[key] = Problem(labels, notes, old.since if old else now)
        if keep_unseen:
            self.problems.update(seen)
        else:
            self.problems = seen

    def due(self, now: float, after_seconds: float) -> list[Problem]:
        """Problems that have lasted `after_seconds`: these are alerts."""
        return [p for p in self.problems.values() if now - p.since >= after_seconds]

    def get_state(self) -> list[dict[str, Any]]:
        """JSON-friendly state."""
        return [
            {"labels": p.labels, "annotations": p.annotations, "since": p.since}
            for p in self.problems.values()
        ]

    @classmethod
    def from_state(cls, raw: Any) -> PipelineWatch:
        """Rebuild from `get_state()`; malformed entries are skipped."""
        watch = cls()
        for item in raw if isinstance(raw, list) else []:
            try:
                p = Problem(dict(item["labels"]), dict(item["annotations"]), float(item["since"]))
            except (KeyError, TypeError, ValueError):
                continue
            watch.problems[label_key(p.labels)] = p
        return watch
