"""Scores to anomalies: start, severity, hysteresis, persistence, eviction."""

import json
import math
import random

from rules.anomaly import AnomalyThresholds, AnomalyTracker


def feed_normal(tr, key, n, t0=0.0, seed=1):
    rnd = random.Random(seed)
    ups = []
    for i in range(n):
        v = 50 + 10 * math.sin(2 * math.pi * i / 288) + rnd.gauss(0, 1)
        ups.append(tr.observe(key, t0 + i * 60.0, v))
    return ups


def test_spike_starts_then_resolves_once():
    tr = AnomalyTracker()
    key = ("web-1", "cpu")
    ups = feed_normal(tr, key, 2000)
    assert not any(u.started for u in ups[300:])
    u = tr.observe(key, 2000 * 60.0, 500.0)
    assert u.started and u.active and u.severity in ("low", "medium", "high")
    after = feed_normal(tr, key, 100, t0=2001 * 60.0, seed=2)
    resolved = [u for u in after if u.resolved]
    assert len(resolved) == 1
    assert not any(u.started for u in after)
    assert not after[-1].active and after[-1].severity is None


def test_resolution_waits_for_quiet_period():
    th = AnomalyThresholds(resolve_points=5, resolve_seconds=600.0)
    tr = AnomalyTracker(th)
    feed_normal(tr, "k", 2000)
    tr.observe("k", 2000 * 60.0, 500.0)
    after = feed_normal(tr, "k", 30, t0=2001 * 60.0, seed=3)
    first = next(i for i, u in enumerate(after) if u.resolved)
    assert first >= 9  # 600 s at 60 s per point after the last abnormal point


def test_severity_levels():
    tr = AnomalyTracker()
    assert tr.severity_of(tr.thresholds.start) == "low"
    assert tr.severity_of(tr.thresholds.medium) == "medium"
    assert tr.severity_of(1.0) == "high"


def test_keys_are_independent():
    tr = AnomalyTracker()
    feed_normal(tr, "a", 1000)
    feed_normal(tr, "b", 1000, seed=4)
    assert tr.observe("a", 1000 * 60.0, 900.0).active
    assert not tr.observe("b", 1000 * 60.0, 50.0).active


def test_state_round_trip():
    tr = AnomalyTracker()
    feed_normal(tr, ("s1", "mem"), 1500)
    tr.observe(("s1", "mem"), 1500 * 60.0, 900.0)
    state = json.loads(json.dumps(tr.get_state()))
    back = AnomalyTracker.from_state(state)
    assert ("s1", "mem") in back
    a = feed_normal(tr, ("s1", "mem"), 50, t0=1501 * 60.0, seed=9)
    b = feed_normal(back, ("s1", "mem"), 50, t0=1501 * 60.0, seed=9)
    assert a == b


def test_idle_keys_are_evicted():
    th = AnomalyThresholds(evict_after_seconds=3600.0)
    tr = AnomalyTracker(th)
    tr.observe("old", 0.0, 1.0)
    tr.observe("new", 7200.0, 1.0)
    assert tr.evict_idle() == 1
    assert "old" not in tr and "new" in tr


def test_key_cap_drops_least_recently_seen():
    tr = AnomalyTracker(AnomalyThresholds(max_keys=3))
    for k in ("a", "b", "c"):
        tr.observe(k, 0.0, 1.0)
    tr.observe("a", 1.0, 1.0)
    tr.observe("d", 2.0, 1.0)
    assert len(tr) == 3 and "b" not in tr and "a" in tr


def test_nan_values_do_not_start_or_resolve():
    tr = AnomalyTracker()
    feed_normal(tr, "k", 500)
    u = tr.observe("k", 500 * 60.0, float("nan"))
    assert u.score == 0.0 and not u.started and not u.resolved
