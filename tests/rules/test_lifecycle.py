"""The status lifecycle, transition by transition, as pure functions with the clock passed in.

pending -> online -> offline -> online, the holds while the pipeline has not
watched long enough, unknown while it cannot see, the pending bound, the
pipeline's own view of the exporter, frozen conditions, and the alerts'
reasons. docs/rules-engine.md draws the same diagram.
"""

from __future__ import annotations

import math

import pytest

from rules import firing
from rules.conditions import ConditionTracker, parse_conditions
from rules.pipeline import PipelineWatch, exporter_view, observable_since, run_start
from rules.promapi import Series
from rules.reasons import Why, pick, reason_annotations
from rules.status import StatusInputs, decide_status, pending_overdue, status_of

NOW = 100_000.0
T = 60.0  # offline threshold


def decide(server: str = "a", **kw) -> str:
    base = dict(
        servers=frozenset({server}),
        heartbeats={},
        suspended=frozenset(),
        troubled=frozenset(),
        now=NOW,
        offline_after_seconds=T,
        reached=frozenset(),
        observable_since=-math.inf,
        pipeline_ok=True,
        previous={},
    )
    base.update(kw)
    return status_of(server, StatusInputs(**base))


# --- pending --------------------------------------------------------------------------


def test_cold_start_never_reached_is_pending_not_offline():
    assert decide() == "pending"
    assert decide(observable_since=NOW - 3600) == "pending"  # an hour later: still pending


def test_pending_bound_counts_from_join_or_from_when_the_pipeline_could_see():
    assert not pending_overdue(NOW - 299, -math.inf, NOW, 300)
    assert pending_overdue(NOW - 300, -math.inf, NOW, 300)
    # Joined long ago, but the pipeline only sees since 100 s: not overdue yet.
    assert not pending_overdue(NOW - 3600, NOW - 100, NOW, 300)


def test_reached_flag_survives_the_heartbeat_leaving_the_query_window():
    # Reached before (engine state), heartbeat now older than the query window.
    assert decide(reached=frozenset({"a"}), observable_since=NOW - 3600) == "offline"
    # Not reached: the same absence is pending.
    assert decide(observable_since=NOW - 3600) == "pending"


# --- online / warning / offline -------------------------------------------------------

# The threshold's boundary and `warning` are decided in test_status_health.py.


def test_offline_back_to_online():
    assert decide(heartbeats={"a": NOW - 1}, previous={"a": "offline"}) == "online"


# --- the pipeline must have watched for the threshold ---------------------------------


@pytest.mark.parametrize(
    "previous, expected",
    [
        ("online", "online"),
        ("warning", "warning"),
        ("offline", "offline"),
        (None, "unknown"),
        ("pending", "unknown"),
    ],
)
def test_stale_heartbeat_within_the_observation_window_holds_what_was_known(previous, expected):
    # Prometheus came back 30 s ago: a 5-minute-old heartbeat says nothing yet.
    kw = dict(
        heartbeats={"a": NOW - 300},
        observable_since=NOW - 30,
        previous={"a": previous} if previous else {},
    )
    assert decide(**kw) == expected


def test_stale_heartbeat_becomes_offline_once_observed_for_the_threshold():
    kw = dict(heartbeats={"a": NOW - 300}, previous={"a": "online"})
    assert decide(observable_since=NOW - T, **kw) == "online"
    assert decide(observable_since=NOW - T - 1, **kw) == "offline"


def test_heartbeat_newer_than_observable_since_decides_by_itself():
    kw = dict(observable_since=NOW - 600, previous={"a": "online"})
    assert decide(heartbeats={"a": NOW - T - 1}, **kw) == "offline"


# --- unknown and suspended -------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"heartbeats": {"a": NOW - 1}},
        {},
        {"suspended": frozenset({"a"})},
        {"heartbeats": {"a": NOW - 999}, "reached": frozenset({"a"})},
    ],
)
def test_pipeline_blind_makes_every_server_unknown_at_once(kw):
    assert decide(pipeline_ok=False, **kw) == "unknown"


def test_suspended_wins_over_staleness_and_pending():
    assert decide(suspended=frozenset({"a"})) == "suspended"
    assert decide(suspended=frozenset({"a"}), heartbeats={"a": NOW - 999}) == "suspended"


def test_a_server_outside_the_inventory_gets_no_status():
    inputs = StatusInputs(
        servers=frozenset({"b"}),
        heartbeats={"a": NOW - 999, "b": NOW},
        suspended=frozenset(),
        troubled=frozenset(),
        now=NOW,
        offline_after_seconds=T,
    )
    assert decide_status(inputs) == {"b": "online"}


# --- the exporter's `up`, read by the engine -------------------------------------------


def up(points, instance="e:9816"):
    return Series({"job": "stacksense-exporter", "instance": instance}, points)


def scrape(start, end, value=1.0, step=15.0):
    n = int((end - start) // step)
    return [(start + i * step, value) for i in range(n + 1)]


def test_exporter_healthy_and_observed_since_the_window_start():
    view = exporter_view([up(scrape(NOW - 600, NOW - 3))], NOW, "stacksense-exporter")
    assert view.healthy_now and view.down == {} and view.observable_since == NOW - 600


def test_exporter_up_zero_is_down_at_once():
    points = scrape(NOW - 600, NOW - 20) + [(NOW - 5, 0.0)]
    view = exporter_view([up(points)], NOW, "stacksense-exporter")
    assert not view.healthy_now and "up is 0" in view.down["e:9816"]


def test_exporter_stale_after_two_scrape_intervals_and_5s():
    points = scrape(NOW - 605, NOW - 35)  # 15 s interval: stale past 35 s
    assert exporter_view([up(points)], NOW, "j").healthy_now
    view = exporter_view([up(points)], NOW + 1, "j")
    assert not view.healthy_now and "no up sample for 36s" in view.down["e:9816"]


def test_no_up_series_at_all_is_down():
    view = exporter_view([], NOW, "stacksense-exporter")
    assert not view.healthy_now
    assert view.down == {"": 'no up{job="stacksense-exporter"} series in Prometheus'}


def test_observable_since_restarts_after_a_gap_or_zeros():
    # Prometheus stopped for 40 s (gap), or the exporter scraped down (zeros).
    gap = scrape(NOW - 600, NOW - 100) + scrape(NOW - 60, NOW)
    assert run_start(gap, 15.0) == NOW - 60
    zeros = scrape(NOW - 600, NOW - 100) + scrape(NOW - 85, NOW - 70, 0.0) + scrape(NOW - 55, NOW)
    assert exporter_view([up(zeros)], NOW, "j").observable_since == NOW - 55
    # One late scrape (a few seconds) is no gap.
    late = scrape(NOW - 600, NOW - 100) + scrape(NOW - 80, NOW)
    assert run_start(late, 15.0) == NOW - 600


def test_one_replica_down_the_other_healthy():
    view = exporter_view([up(scrape(NOW - 600, NOW)), up([(NOW - 5, 0.0)], "f:9816")], NOW, "j")
    assert view.healthy_now and set(view.down) == {"f:9816"}


def test_observable_since_is_the_latest_known_start():
    assert observable_since(None, NOW - 50, NOW - 10) == NOW - 10
    assert observable_since(None, None) == -math.inf


def test_pipeline_watch_keeps_first_seen_and_alerts_after_the_delay():
    w = PipelineWatch()
    problem = ({"alertname": "StackSenseExporterDown", "instance": "e"}, {"summary": "x"})
    w.update([problem], NOW)
    w.update([problem], NOW + 30)
    assert w.due(NOW + 59, 60) == []
    (p,) = w.due(NOW + 60, 60)
    assert p.since == NOW
    prom = ({"alertname": "StackSensePrometheusUnreachable"}, {})
    w.update([prom], NOW + 61, keep_unseen=True)  # the exporter cannot be checked: kept
    assert len(w.problems) == 2
    w = PipelineWatch.from_state(w.get_state())
    w.update([], NOW + 90)  # both seen fine again: resolved
    assert w.problems == {}


# --- frozen conditions -----------------------------------------------------------------

DISK = parse_conditions(
    {
        "conditions": [
            {
                "alert": "DiskAlmostFull",
                "metric": "stacksense_filesystem_usage_ratio",
                "op": ">",
                "threshold": 0.9,
                "severity": "critical",
            }
        ]
    },
    "t",
)[0]


def test_an_offline_server_keeps_its_firing_condition_until_fresh_data():
    tracker = ConditionTracker()
    series = [({"server": "a", "mountpoint": "/"}, 0.95)]
    tracker.update(DISK, series, NOW)
    assert [a.labels["server"] for a in tracker.firing()] == ["a"]
    # Offline: the series vanished, but "a" is frozen: nothing resolves.
    assert tracker.update(DISK, [], NOW + 60, frozenset({"a"})) == []
    assert tracker.firing()[0].active_since == NOW
    # Back with fresh data that no longer matches: resolved now, not before.
    assert len(tracker.update(DISK, [], NOW + 120)) == 1 and tracker.firing() == []


def test_a_condition_about_the_failure_itself_fires_while_frozen():
    probe = parse_conditions(
        {
            "conditions": [
                {
                    "alert": "ProbeFailing",
                    "expr": "stacksense_probe_success == 0",
                    "for": "60s",
                    "severity": "warning",
                }
            ]
        },
        "t",
    )[0]
    tracker = ConditionTracker()
    tracker.update(probe, [({"server": "a"}, 0.0)], NOW, frozenset({"a"}))
    tracker.update(probe, [({"server": "a"}, 0.0)], NOW + 60, frozenset({"a"}))
    assert [a.labels["server"] for a in tracker.firing()] == ["a"]


def test_a_server_that_left_the_inventory_loses_its_conditions():
    tracker = ConditionTracker()
    tracker.update(DISK, [({"server": "a", "mountpoint": "/"}, 0.95)], NOW)
    tracker.forget_servers({"a"})
    assert tracker.firing() == []


# --- reasons in the alerts -------------------------------------------------------------


def test_offline_alert_carries_reason_and_last_error():
    reasons = {"a": Why("refused", None, "a: connect to 10.0.0.1:22: Connection refused")}
    (alert,) = firing.offline_alerts({"a": ("offline", NOW - 10)}, "http://e", reasons)
    assert alert.labels == {"alertname": "ServerOffline", "server": "a", "severity": "critical"}
    assert alert.annotations["reason"] == "refused"
    assert alert.annotations["summary"] == "a is offline (connection refused)"
    assert "Connection refused" in alert.annotations["description"]
    assert alert.annotations["last_error"].startswith("a: connect to")
    (bare,) = firing.offline_alerts({"b": ("offline", NOW)}, "http://e")
    assert bare.annotations["reason"] == "no_heartbeat" and "last_error" not in bare.annotations


def test_the_detail_says_which_host_key_problem():
    why = Why("host_key", "host_key_changed", "a: host key for [h]:22 changed (expected ...)")
    (alert,) = firing.offline_alerts({"a": ("offline", NOW)}, "http://e", {"a": why})
    assert alert.annotations["reason"] == "host_key"  # the stable set, as the exporter's
    assert alert.annotations["detail"] == "host_key_changed"
    assert alert.annotations["summary"] == "a is offline (host key changed)"


def test_unreachable_warning_after_the_pending_bound_never_offline():
    statuses = {
        "new": ("pending", NOW - 299),
        "old": ("pending", NOW - 301),
        "up": ("online", NOW - 999),
    }
    alerts = firing.unreachable_alerts(
        statuses, -math.inf, NOW, 300, "http://e", {"old": Why("host_key")}
    )
    assert [(a.labels["alertname"], a.labels["server"], a.labels["severity"]) for a in alerts] == [
        ("ServerUnreachable", "old", "warning")
    ]
    assert alerts[0].annotations["reason_text"] == "host key changed or not trusted"
    assert alerts[0].starts_at == NOW - 1


def test_reason_pick_uses_the_message_of_the_same_reason_only():
    errors = {"a": ("auth", "auth", "a: authentication failed for user ops")}
    assert pick({"a": "auth"}, errors, "a") == Why(
        "auth", "auth", "a: authentication failed for user ops"
    )
    assert pick({"a": "timeout"}, errors, "a") == Why("timeout")
    assert pick({}, errors, "a") == Why("auth", "auth", "a: authentication failed for user ops")
    assert pick({}, {}, "a") == Why()
    long = reason_annotations(Why("timeout", None, "x" * 1000))["last_error"]
    assert len(long) == 300


# --- the engine's bookkeeping across cycles and restarts -------------------------------


def quiet_engine(tmp_path):
    from rules.config import EngineConfig
    from rules.engine import Engine
    from tests.peers.util import free_port

    config = EngineConfig(
        prometheus_url=f"http://127.0.0.1:{free_port()}",
        prometheus_retries=0,
        prometheus_timeout_seconds=1.0,
        state_file=tmp_path / "state.json",
    )
    return Engine(config, [])


def test_anomaly_alert_of_a_frozen_server_is_kept_until_fresh_data(tmp_path):
    from rules.alerts import AlertRecord
    from rules.engine import CycleReport

    engine = quiet_engine(tmp_path)
    labels = {
        "alertname": "MetricAnomaly",
        "server": "a",
        "metric": "cpu",
        "anomaly_severity": "high",
        "severity": "warning",
    }
    engine.book.sync([AlertRecord(labels, {"summary": "x"}, NOW - 100)], NOW - 100)
    engine.statuses = {"a": ("offline", NOW - 50)}
    report = CycleReport(now=NOW, ok=True, statuses={"a": "offline"})
    engine._sync_alerts(NOW, report, frozenset({"a"}))  # no anomaly update: a is offline
    (kept,) = [r for r in engine.book.records.values() if r.labels["alertname"] == "MetricAnomaly"]
    assert kept.ends_at is None and kept.starts_at == NOW - 100
    engine.statuses = {"a": ("online", NOW + 15)}
    engine._sync_alerts(NOW + 15, CycleReport(now=NOW + 15, ok=True), frozenset())
    assert kept.ends_at == NOW + 15  # fresh data without the anomaly: resolved


def test_reached_known_and_observing_since_survive_a_restart(tmp_path):
    engine = quiet_engine(tmp_path)
    engine.reached, engine.observing_since = {"a"}, NOW - 500
    engine.known = {"a": ("offline", NOW - 900)}
    engine.watch.update([({"alertname": "StackSenseExporterDown"}, {})], NOW)
    engine._save()
    again = quiet_engine(tmp_path)
    assert again.reached == {"a"} and again.known == {"a": ("offline", NOW - 900)}
    assert again.observing_since == NOW - 500
    assert [p.since for p in again.watch.problems.values()] == [NOW]


def test_prometheus_unreachable_cycle_is_unknown_and_keeps_every_alert(tmp_path):
    from rules.alerts import AlertRecord

    engine = quiet_engine(tmp_path)
    engine.statuses = {"a": ("offline", NOW - 50), "b": ("online", NOW - 900)}
    engine.known = {"a": ("offline", NOW - 50), "b": ("online", NOW - 900)}
    offline = AlertRecord(
        {"alertname": "ServerOffline", "server": "a", "severity": "critical"}, {}, NOW - 50
    )
    engine.book.sync([offline], NOW - 50)
    report = engine.run_cycle(NOW)
    assert not report.ok and report.statuses == {"a": "unknown", "b": "unknown"}
    assert offline.ends_at is None  # not resolved for want of an answer
    assert [p.labels["alertname"] for p in engine.watch.problems.values()] == [
        "StackSensePrometheusUnreachable"
    ]
    engine.run_cycle(NOW + 60)
    names = {r.labels["alertname"] for r in engine.book.firing(NOW + 60)}
    assert names == {"ServerOffline", "StackSensePrometheusUnreachable"}
    assert engine.known == {"a": ("offline", NOW - 50), "b": ("online", NOW - 900)}


def test_pending_warning_survives_a_pipeline_outage(tmp_path):
    from rules.engine import CycleReport

    engine = quiet_engine(tmp_path)
    engine.statuses = {"p": ("pending", NOW - 1000)}
    report = CycleReport(now=NOW, ok=True, statuses={"p": "pending"}, observable_since=-math.inf)
    engine._sync_alerts(NOW, report, frozenset({"p"}))
    (warning,) = engine.book.firing(NOW)
    assert warning.labels["alertname"] == "ServerUnreachable"
    # The pipeline was blind, then back 10 s ago: the bound would count again from there,
    # but the warning already firing stays (no false resolve, no second notification).
    engine.statuses = {"p": ("pending", NOW + 60)}
    later = CycleReport(now=NOW + 70, ok=True, statuses={"p": "pending"}, observable_since=NOW + 60)
    engine._sync_alerts(NOW + 70, later, frozenset({"p"}))
    assert [
        (r.labels["alertname"], r.starts_at, r.ends_at) for r in engine.book.firing(NOW + 70)
    ] == [("ServerUnreachable", warning.starts_at, None)]


def test_a_state_file_from_before_the_lifecycle_keeps_offline_servers_offline(tmp_path):
    import json

    # Written by the previous engine: statuses only. "a" has been offline for 20 minutes
    # (its heartbeat is out of the query window): it must not turn pending and resolve.
    (tmp_path / "state.json").write_text(
        json.dumps(
            {"version": 1, "statuses": {"a": ["offline", NOW - 1200], "s": ["suspended", NOW]}}
        )
    )
    engine = quiet_engine(tmp_path)
    assert engine.reached == {"a"} and engine.known == {"a": ("offline", NOW - 1200)}
    assert decide(reached=frozenset(engine.reached), observable_since=NOW - 3600) == "offline"


def test_prometheus_problem_text_has_no_credentials_and_is_stable():
    from rules.engine import prometheus_problem

    error = (
        "Prometheus at http://ops:s3cret@prom:9090 unavailable after 3 attempts: "
        "ConnectionError: (<urllib3.connection.HTTPConnection object at 0x7f3a2b1c>, "
        "'Connection refused')"
    )
    labels, notes = prometheus_problem(error)
    assert labels == {"alertname": "StackSensePrometheusUnreachable", "severity": "critical"}
    assert "s3cret" not in notes["description"] and "ops" not in notes["description"]
    assert "0x7f3a" not in notes["description"] and "http://prom:9090" in notes["description"]


def test_a_failed_cycle_logs_no_credentials_of_the_prometheus_url(tmp_path, caplog):
    from rules.config import EngineConfig
    from rules.engine import Engine
    from tests.peers.util import free_port

    config = EngineConfig(
        prometheus_url=f"http://ops:s3cret@127.0.0.1:{free_port()}",
        prometheus_retries=0,
        prometheus_timeout_seconds=1.0,
        state_file=tmp_path / "state.json",
    )
    report = Engine(config, []).run_cycle(NOW)
    assert not report.ok and "s3cret" not in report.error
    assert "cannot query Prometheus" in caplog.text and "s3cret" not in caplog.text
