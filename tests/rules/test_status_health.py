"""Pure decisions: status, health, grace."""

from __future__ import annotations

import pytest

from rules.grace import (
    GraceSettings,
    GraceState,
    from_engine_downtime,
    from_prometheus_start,
    from_up_history,
)
from rules.health import color_of, health_of
from rules.promapi import Series
from rules.status import StatusInputs, decide_status, transitions

NOW = 10_000.0


def inputs(**kw):
    base = dict(
        servers=frozenset({"a"}),
        heartbeats={"a": NOW - 10},
        suspended=frozenset(),
        troubled=frozenset(),
        now=NOW,
        offline_after_seconds=60.0,
    )
    base.update(kw)
    return StatusInputs(**base)


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, "online"),
        ({"heartbeats": {"a": NOW - 60}}, "online"),  # exactly at the threshold: not yet
        ({"heartbeats": {"a": NOW - 60.001}}, "offline"),
        ({"heartbeats": {}}, "pending"),  # never heard from: pending, never offline
        ({"heartbeats": {"a": NOW + 30}}, "online"),  # clock skew is not staleness
        ({"troubled": frozenset({"a"})}, "warning"),
        ({"troubled": frozenset({"a"}), "heartbeats": {}}, "pending"),
        ({"troubled": frozenset({"a"}), "heartbeats": {"a": NOW - 61}}, "offline"),
        ({"suspended": frozenset({"a"}), "heartbeats": {}}, "suspended"),
        ({"heartbeats": {"a": NOW - 300}, "offline_after_seconds": 600.0}, "online"),  # grace
    ],
)
def test_status(kw, expected):
    assert decide_status(inputs(**kw)) == {"a": expected}


def test_transitions():
    assert list(
        transitions(
            {"a": "online", "b": "offline"}, {"a": "offline", "b": "offline", "c": "online"}
        )
    ) == [("a", "online", "offline"), ("c", None, "online")]


@pytest.mark.parametrize(
    "ratio, colour",
    [
        (0.0, "green"),
        (0.6999, "green"),
        (0.70, "yellow"),
        (0.85, "yellow"),
        (0.8501, "red"),
        (1.0, "red"),
    ],
)
def test_colour_boundaries(ratio, colour):
    assert color_of(ratio) == colour


def test_health_worst_component_decides_and_breakdown_kept():
    h = health_of({"cpu": 0.2, "memory": 0.72, "disk": 0.5, "swap": float("nan")})
    assert h is not None
    assert (h.color, h.worst, h.score) == ("yellow", "memory", 28.0)
    assert h.components == {"cpu": 80.0, "disk": 50.0, "memory": 28.0}
    assert health_of({}) is None
    assert health_of({"cpu": 1.7}).score == 0.0  # clamped
    assert health_of({"cpu": 0.75}, yellow_at=0.8, red_at=0.9).color == "green"


def up(points, instance="e:9816"):
    return Series({"job": "stacksense-exporter", "instance": instance}, points)


S = GraceSettings()  # 300 s outage threshold, 600 s grace


def scrape(start, end, step=15.0, value=1.0):
    out, t = [], start
    while t < end:
        out.append((t, value))
        t += step
    return out


def test_no_gap_no_grace():
    state = GraceState()
    from_up_history([up(scrape(NOW - 1100, NOW))], NOW, S, state)
    assert not state.active(NOW) and not state.pipeline_down


def test_gap_longer_than_threshold_gives_grace_for_the_period_after_it():
    points = scrape(NOW - 1100, NOW - 700) + scrape(NOW - 360, NOW)  # 340 s hole
    state = GraceState()
    from_up_history([up(points)], NOW, S, state)
    assert state.active(NOW) and state.grace_until == pytest.approx(NOW - 360 + 600)
    short = scrape(NOW - 1100, NOW - 700) + scrape(NOW - 450, NOW)  # 250 s: no grace
    state = GraceState()
    from_up_history([up(short)], NOW, S, state)
    assert not state.active(NOW)


def test_exporter_scraped_but_down_counts_as_a_gap():
    points = (
        scrape(NOW - 1100, NOW - 700)
        + scrape(NOW - 700, NOW - 300, value=0.0)
        + scrape(NOW - 300, NOW)
    )
    state = GraceState()
    from_up_history([up(points)], NOW, S, state)
    assert state.active(NOW)


def test_ongoing_outage_is_pipeline_down_and_grace_outlasts_it():
    state = GraceState()
    from_up_history([up(scrape(NOW - 1100, NOW - 400))], NOW, S, state)
    assert state.pipeline_down and state.grace_until == NOW + 600
    state = GraceState()
    from_up_history([up(scrape(NOW - 1100, NOW - 90))], NOW, S, state)
    assert state.pipeline_down and not state.active(NOW)  # 90 s: hold, no grace yet


def test_prometheus_start_counts_only_without_up_history():
    state = GraceState()
    from_prometheus_start(NOW - 100, False, NOW, S, state)
    assert state.active(NOW)
    state = GraceState()
    from_prometheus_start(NOW - 100, True, NOW, S, state)
    from_prometheus_start(NOW - 700, False, NOW, S, state)
    assert not state.active(NOW)


def test_engine_downtime():
    state = GraceState()
    from_engine_downtime(NOW - 200, NOW, S, state)
    assert not state.active(NOW)
    from_engine_downtime(NOW - 400, NOW, S, state)
    assert state.grace_until == NOW + 600 and "rule engine was down" in state.reasons[0]


def test_a_first_start_is_no_outage_but_a_restart_is():
    # Prometheus' data starts 5 minutes ago: on a first start nothing was missed ...
    state = GraceState()
    from_up_history([up(scrape(NOW - 300, NOW))], NOW, S, state, monitored_before=False)
    assert not state.active(NOW)
    # ... but an engine that watched before was blind during the missing history.
    state = GraceState()
    from_up_history([up(scrape(NOW - 300, NOW))], NOW, S, state, monitored_before=True)
    assert state.active(NOW)
