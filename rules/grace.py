"""Monitoring-outage detection: when the pipeline itself was down, be lenient for a while.

Three signs of an outage, each turned into "grace until T":

* a gap longer than the outage threshold between healthy (`up == 1`) samples
  of the exporter's own scrape job, read raw from `up{job=...}[window]`: it
  covers the exporter being down (samples with value 0) and Prometheus being
  down (no samples at all);
* Prometheus started recently (`process_start_time_seconds{job="prometheus"}`)
  while no exporter `up` history says how long it was away: we cannot measure
  the gap, so we assume it was long (a false "offline" is the worse mistake);
* the engine's own downtime: the time since its last cycle, from the state file.

Grace lasts `grace_period` after the outage ended. Whether the exporter is
down *right now*, and since when the pipeline can see, is pipeline.py's job
(`GraceState.pipeline_down` is kept for the tests of this module only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rules.promapi import Series


@dataclass(frozen=True)
class GraceSettings:
    """Thresholds for outage detection."""

    outage_threshold_seconds: float = 300.0
    grace_period_seconds: float = 600.0
    stale_after_seconds: float = 60.0  # exporter not scraped healthy for this long = down now

    @property
    def window_seconds(self) -> float:
        """How much `up` history to read: enough to see an outage that ended a grace ago."""
        return self.grace_period_seconds + self.outage_threshold_seconds + 120.0


@dataclass
class GraceState:
    """The verdict for one cycle."""

    grace_until: float | None = None
    pipeline_down: bool = False
    reasons: list[str] = field(default_factory=list)

    def active(self, now: float) -> bool:
        """Whether the grace threshold applies at `now`."""
        return self.grace_until is not None and now < self.grace_until

    def extend(self, until: float, reason: str) -> None:
        """Record an outage whose grace lasts until `until`."""
        if self.grace_until is None or until > self.grace_until:
            self.grace_until = until
        self.reasons.append(reason)


def from_up_history(
    up: Sequence[Series],
    now: float,
    settings: GraceSettings,
    state: GraceState,
    *,
    monitored_before: bool = True,
) -> None:
    """Find outages in the exporter job's raw `up` samples (one series per replica).

    `monitored_before`: the engine had watched this fleet before it started (its state
    file says so). Without that, a series that starts late in the window is the
    monitoring's first start, not an outage: nothing was missed, so there is nothing
    to be lenient about, and a host that dies minutes after a fresh start is paged on
    the ordinary threshold.
    """
    window_start = now - settings.window_seconds
    newest_healthy = None
    for series in up:
        healthy = [t for t, value in series.points if value >= 1.0 and t <= now]
        if not healthy:
            state.pipeline_down = True
            state.reasons.append(
                f"exporter {series.labels.get('instance', '?')} down "
                f"for the whole {settings.window_seconds:g}s window"
            )
            continue
        newest_healthy = max(newest_healthy or healthy[-1], healthy[-1])
        # A series that starts late in the window: its history before was a gap too
        # (fresh Prometheus data, new exporter), measured from the window start.
        starts_late = series.points[0][0] > window_start + 60.0
        previous = window_start if starts_late and monitored_before else healthy[0]
        for t in healthy:
            if t - previous > settings.outage_threshold_seconds:
                state.extend(
                    t + settings.grace_period_seconds,
                    f"exporter {series.labels.get('instance', '?')} gap of "
                    f"{t - previous:.0f}s ended at {t:.0f}",
                )
            previous = t
        if now - healthy[-1] > settings.stale_after_seconds:
            state.pipeline_down = True
            state.reasons.append(
                f"exporter {series.labels.get('instance', '?')} not scraped "
                f"healthy for {now - healthy[-1]:.0f}s"
            )
    if newest_healthy is not None and now - newest_healthy > settings.outage_threshold_seconds:
        # The outage is still going on: grace must outlast it once it ends.
        state.extend(now + settings.grace_period_seconds, "exporter outage ongoing")


def from_prometheus_start(
    start_time: float | None,
    has_up_history: bool,
    now: float,
    settings: GraceSettings,
    state: GraceState,
) -> None:
    """A recent Prometheus start with no `up` history to measure the gap: assume an outage."""
    if start_time is None or has_up_history:
        return
    if now - start_time < settings.grace_period_seconds:
        state.extend(
            start_time + settings.grace_period_seconds,
            f"Prometheus started at {start_time:.0f}, gap unknown",
        )


def from_engine_downtime(
    last_cycle: float | None, now: float, settings: GraceSettings, state: GraceState
) -> None:
    """The engine's own gap, from the last cycle recorded in its state file."""
    if last_cycle is None:
        return
    gap = now - last_cycle
    if gap > settings.outage_threshold_seconds:
        state.extend(now + settings.grace_period_seconds, f"rule engine was down for {gap:.0f}s")
