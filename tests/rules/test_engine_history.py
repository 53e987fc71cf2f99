"""The engine against a real Prometheus holding backfilled history.

One hour of 15 s samples is backfilled (promtool) about four hours in the
past; cycles are evaluated at chosen instants of that hour (`run_cycle(now)`
queries with `time=`), so minutes of history cost no waiting.

Timeline (minutes after T0):
  0-60  exporter replicas exp1/exp2 scraped every 15 s, except
  20-26.5  monitoring outage: no samples at all (Prometheus/exporter down)
  10    server `gone1` stops answering (its heartbeat freezes)
  40    server `db1` stops answering
  45-55 `cpuhot` CPU at 95 % (HighCpuUsage: > 80 % for 5 m)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rules.alerts import rfc3339
from rules.conditions import Condition, default_conditions, parse_conditions
from rules.config import EngineConfig
from rules.engine import Engine
from rules.metrics import EngineCollector
from tests.peers.openmetrics import History
from tests.peers.prometheus import PROMTOOL, Prometheus, backfill, prometheus

T0 = (int(time.time()) // 3600 - 4) * 3600
M = 60.0
OUT_START, RECOVERY = T0 + 20 * M, T0 + 26.5 * M
GONE, DB_DEATH = T0 + 10 * M, T0 + 40 * M
HOT_START, HOT_END = T0 + 45 * M, T0 + 55 * M
EXPORTER = {"job": "stacksense-exporter"}
SERVERS = ["web1", "db1", "gone1", "sus1", "never1", "g1", "y1", "y2", "r1", "cpuhot"]
RATIOS = {  # server -> (cpu, memory, swap, {mountpoint: fs})
    "g1": (0.69, 0.5, 0.0, {"/": 0.3}),
    "y1": (0.70, 0.5, 0.0, {"/": 0.3}),
    "y2": (0.2, 0.85, 0.1, {"/": 0.3}),
    "r1": (0.2, 0.3, 0.0, {"/": 0.2, "/data": 0.86}),
    "web1": (0.1, 0.2, 0.0, {"/": 0.1}),
    "db1": (0.1, 0.2, 0.0, {"/": 0.1}),
}


def in_outage(t: float) -> bool:
    return OUT_START <= t < RECOVERY


def last_probe(t: float) -> float:
    """Last successful contact as the exporter reports it at scrape time t."""
    if t < RECOVERY + 15:
        return min(t, OUT_START) - 5 if t < OUT_START else OUT_START - 20
    return t - 5


def build_history() -> str:
    h = History()
    end = T0 + 60 * M
    for replica in ("exp1:9816", "exp2:9816"):
        labels = {**EXPORTER, "instance": replica}
        h.fill("up", labels, T0, end, 15, lambda t: None if in_outage(t) else 1.0)
    exp1 = {**EXPORTER, "instance": "exp1:9816"}
    exp2 = {**EXPORTER, "instance": "exp2:9816"}
    alive = {  # server -> heartbeat value at scrape time t
        "web1": last_probe,
        "db1": lambda t: min(last_probe(t), DB_DEATH),
        "gone1": lambda t: min(last_probe(t), GONE),
        "g1": last_probe,
        "y1": last_probe,
        "y2": last_probe,
        "r1": last_probe,
        "cpuhot": last_probe,
    }
    for server in SERVERS:
        h.fill(
            "stacksense_server_suspended",
            {**exp1, "server": server},
            T0,
            end,
            15,
            lambda t, s=server: None if in_outage(t) else float(s == "sus1"),
        )
        if server in alive:
            h.fill(
                "stacksense_last_heartbeat_timestamp_seconds",
                {**exp1, "server": server, "source": "ssh"},
                T0,
                end,
                15,
                lambda t, f=alive[server]: None if in_outage(t) else f(t),
            )
    # A second replica and a push source with older heartbeats: the newest must win.
    h.fill(
        "stacksense_last_heartbeat_timestamp_seconds",
        {**exp2, "server": "web1", "source": "ssh"},
        T0,
        end,
        15,
        lambda t: None if in_outage(t) else t - 900,
    )
    h.fill(
        "stacksense_last_heartbeat_timestamp_seconds",
        {**exp1, "server": "db1", "source": "push"},
        T0,
        end,
        15,
        lambda t: None if in_outage(t) else t - 700,
    )
    ratios = dict(RATIOS)
    for server, (cpu, mem, swap, fs) in ratios.items():
        probe = {"job": "stacksense-probe", "instance": server, "server": server}
        stop = DB_DEATH if server == "db1" else end
        h.fill("stacksense_cpu_usage_ratio", probe, T0, stop, 15, lambda t, v=cpu: v)
        h.fill("stacksense_memory_usage_ratio", probe, T0, stop, 15, lambda t, v=mem: v)
        h.fill("stacksense_swap_usage_ratio", probe, T0, stop, 15, lambda t, v=swap: v)
        for mount, ratio in fs.items():
            h.fill(
                "stacksense_filesystem_usage_ratio",
                {**probe, "mountpoint": mount},
                T0,
                stop,
                15,
                lambda t, v=ratio: v,
            )
        for direction in ("receive", "transmit"):
            h.fill(
                f"node_network_{direction}_bytes_total",
                {**probe, "device": "eth0"},
                T0,
                stop,
                15,
                lambda t: (t - T0) * 1000.0,
                kind="counter",
            )
    hot = {"job": "stacksense-probe", "instance": "cpuhot", "server": "cpuhot"}
    h.fill(
        "stacksense_cpu_usage_ratio",
        hot,
        T0,
        end,
        15,
        lambda t: 0.95 if HOT_START <= t < HOT_END else 0.3,
    )
    return h.render()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("prom-history")
    backfill(build_history(), tmp / "data")
    with prometheus(tmp, {"global": {"scrape_interval": "15s"}}, data_dir=tmp / "data") as p:
        p.wait_for_series(f"up @ {T0 + 30 * M}")
        yield p


def make_engine(
    prom: Prometheus, tmp_path: Path, conditions: list[Condition] | None = None, **overrides
) -> Engine:
    config = EngineConfig(
        prometheus_url=prom.url,
        state_file=tmp_path / "state.json",
        prometheus_retries=0,
        **overrides,
    )
    return Engine(config, default_conditions() if conditions is None else conditions)


def warm(prom: Prometheus, tmp_path: Path, until: float, seconds: float = 75.0) -> Engine:
    """An engine that has been watching (cycles every 15 s) for `seconds` before `until`.

    A fresh engine calls nothing offline before it has itself watched for the offline
    threshold; the engine under test reuses this one's state file.
    """
    engine = make_engine(prom, tmp_path)
    t = until - seconds
    while t < until:
        engine.run_cycle(t)
        t += 15
    return engine


def test_health_colours_at_the_70_and_85_boundaries(prom, tmp_path):
    engine = make_engine(prom, tmp_path)
    report = engine.run_cycle(T0 + 50 * M)
    assert report.ok, report.error
    colours = {s: h.color for s, h in report.health.items()}
    assert colours["g1"] == "green"  # 69 %
    assert colours["y1"] == "yellow"  # exactly 70 %
    assert colours["y2"] == "yellow"  # exactly 85 %
    assert colours["r1"] == "red"  # 86 % on /data
    assert report.health["r1"].worst == "disk"
    assert report.health["g1"].score == pytest.approx(31.0)
    assert report.health["y2"].components["memory"] == pytest.approx(15.0)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    assert (
        registry.get_sample_value("stacksense_server_health", {"server": "r1", "color": "red"})
        == 1.0
    )
    assert (
        registry.get_sample_value("stacksense_server_health", {"server": "r1", "color": "green"})
        == 0.0
    )
    assert registry.get_sample_value(
        "stacksense_server_health_score", {"server": "y1"}
    ) == pytest.approx(30.0)


def test_fleet_status_in_a_handful_of_queries(prom, tmp_path):
    fresh = make_engine(prom, tmp_path / "fresh").run_cycle(T0 + 50 * M).statuses
    # A fresh engine has not watched: dead servers are unknown, not offline, at first.
    assert (fresh["web1"], fresh["gone1"], fresh["db1"]) == ("online", "unknown", "unknown")
    engine = warm(prom, tmp_path, T0 + 50 * M)
    report = engine.run_cycle(T0 + 50 * M)
    assert report.ok, report.error
    assert report.queries <= 10
    assert not report.grace_active
    s = report.statuses
    assert s["web1"] == "online"  # exp2 and older sources lose to the newest heartbeat
    assert s["sus1"] == "suspended"
    assert s["never1"] == "pending"  # in the inventory, never heard from: never offline
    assert s["gone1"] == "offline"
    assert s["db1"] == "offline"  # died at 40 min
    assert s["cpuhot"] == "online"  # HighCpuUsage only pending in a first cycle
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    assert (
        registry.get_sample_value(
            "stacksense_server_status", {"server": "sus1", "status": "suspended"}
        )
        == 1.0
    )
    assert (
        registry.get_sample_value(
            "stacksense_server_status", {"server": "sus1", "status": "online"}
        )
        == 0.0
    )
    assert registry.get_sample_value("stacksense_rules_cycle_queries") == report.queries


def test_offline_within_one_cycle_after_the_heartbeat_passes_60s(prom, tmp_path):
    engine = warm(prom, tmp_path, DB_DEATH + 45)
    before = engine.run_cycle(DB_DEATH + 45)
    assert before.statuses["db1"] == "online"  # 45 s old (push source is 700 s old)
    report = engine.run_cycle(DB_DEATH + 61)
    assert report.statuses["db1"] == "offline"
    offline = [
        r
        for r in engine.book.records.values()
        if r.labels["alertname"] == "ServerOffline" and r.labels["server"] == "db1"
    ]
    assert len(offline) == 1 and offline[0].ends_at is None
    assert offline[0].labels["severity"] == "critical"
    assert offline[0].annotations["reason"] == "no_heartbeat"  # no probe failure recorded
    assert engine.history["db1"] == [[DB_DEATH - 30, "online"], [DB_DEATH + 61, "offline"]]
    assert make_engine(prom, tmp_path).history["db1"][-1] == [DB_DEATH + 61, "offline"]


def test_no_offline_after_a_six_minute_monitoring_outage(prom, tmp_path):
    engine = warm(prom, tmp_path, OUT_START - 15)
    before = engine.run_cycle(OUT_START - 15)
    assert (before.statuses["web1"], before.statuses["gone1"]) == ("online", "offline")
    during = engine.run_cycle(OUT_START + 3 * M)
    assert during.pipeline_down and not during.exporter_up  # no fresh `up` sample
    assert set(during.statuses.values()) == {"unknown"}  # neither online nor offline
    # gone1's ServerOffline is kept as it was while nothing can be seen.
    gone = [
        r
        for r in engine.book.records.values()
        if r.labels.get("server") == "gone1" and r.labels["alertname"] == "ServerOffline"
    ]
    assert len(gone) == 1 and gone[0].ends_at is None
    assert (
        make_engine(prom, tmp_path / "fresh").run_cycle(OUT_START + 3 * M).statuses["web1"]
        == "unknown"
    )
    report = engine.run_cycle(RECOVERY + 5)
    # The heartbeat the exporter reports right after recovery is 6.5 minutes old.
    assert report.grace_active and report.exporter_up
    assert report.statuses["web1"] == "online"
    assert report.statuses["gone1"] == "offline"  # 16 minutes without a heartbeat: still offline
    after = [
        r
        for r in engine.book.records.values()
        if r.labels.get("server") == "gone1" and r.labels["alertname"] == "ServerOffline"
    ]
    assert [(r.starts_at, r.ends_at) for r in after] == [(gone[0].starts_at, None)]  # one alert
    assert not [
        r
        for r in engine.book.records.values()
        if r.labels.get("server") == "web1" and r.labels["alertname"] == "ServerOffline"
    ]
    assert not [r for r in engine.book.records.values() if r.labels["alertname"] == "ServerOnline"]
    # Without grace, web1 is not offline either: the pipeline has watched only 5 s since
    # it came back, so the 6.5-minute-old heartbeat says nothing yet (unknown) ...
    strict = make_engine(prom, tmp_path / "strict", grace_offline_after_seconds=60.0)
    assert strict.run_cycle(RECOVERY + 5).statuses["web1"] == "unknown"
    # ... and the first fresh heartbeat after the recovery makes it online.
    assert strict.run_cycle(RECOVERY + 35).statuses["web1"] == "online"
    # Grace lasts 10 minutes after the outage ended, then the normal threshold is back.
    later = make_engine(prom, tmp_path / "later")
    assert later.run_cycle(RECOVERY + 10 * M - 15).grace_active
    assert not later.run_cycle(RECOVERY + 10 * M + 15).grace_active


def test_engine_downtime_from_its_state_file_gives_grace(prom, tmp_path):
    engine = make_engine(prom, tmp_path)
    assert not engine.run_cycle(T0 + 40 * M).grace_active
    restarted = make_engine(prom, tmp_path)
    assert restarted.run_cycle(T0 + 47 * M).grace_active  # 7 minutes without a cycle


def test_condition_fires_only_after_its_for_duration_then_resolves(prom, tmp_path):
    engine = make_engine(prom, tmp_path)
    t = HOT_START - 15
    fired_at = None
    while t <= HOT_START + 6 * M:
        engine.run_cycle(t)
        hot = [a for a in engine.tracker.active.values() if a.condition == "HighCpuUsage"]
        if t < HOT_START:
            assert not hot
        elif hot and hot[0].firing and fired_at is None:
            fired_at = t
        t += 15
    assert fired_at == HOT_START + 5 * M  # pending for exactly 5 minutes
    alert = next(r for r in engine.book.records.values() if r.labels["alertname"] == "HighCpuUsage")
    assert alert.labels["server"] == "cpuhot" and alert.labels["severity"] == "warning"
    assert alert.starts_at == fired_at
    assert alert.annotations["summary"].startswith("CPU usage on cpuhot is 95%")
    assert engine.report is not None and engine.report.statuses["cpuhot"] == "warning"
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    assert (
        registry.get_sample_value(
            "stacksense_condition_firing",
            {"server": "cpuhot", "alertname": "HighCpuUsage", "severity": "warning"},
        )
        == 1.0
    )
    assert (
        registry.get_sample_value(
            "stacksense_server_status", {"server": "cpuhot", "status": "warning"}
        )
        == 1.0
    )

    # A restart neither re-fires nor forgets: same start, still firing, no new events.
    events_before = {k for k, r in engine.book.records.items() if r.event}
    restarted = make_engine(prom, tmp_path)
    report = restarted.run_cycle(HOT_START + 6 * M + 15)
    again = next(
        r for r in restarted.book.records.values() if r.labels["alertname"] == "HighCpuUsage"
    )
    assert again.starts_at == fired_at and again.ends_at is None
    assert {k for k, r in restarted.book.records.items() if r.event} == events_before
    assert report.statuses["cpuhot"] == "warning"

    t = HOT_END - 15
    while t <= HOT_END + 15:
        restarted.run_cycle(t)
        t += 15
    resolved = next(
        r for r in restarted.book.records.values() if r.labels["alertname"] == "HighCpuUsage"
    )
    assert resolved.ends_at == HOT_END
    assert restarted.report is not None and restarted.report.statuses["cpuhot"] == "online"


def test_watchdog_always_fires(prom, tmp_path):
    engine = make_engine(prom, tmp_path)
    engine.run_cycle(T0 + 50 * M)
    watchdog = [r for r in engine.book.records.values() if r.labels["alertname"] == "Watchdog"]
    assert len(watchdog) == 1 and watchdog[0].labels["severity"] == "none"
    assert watchdog[0].ends_at is None


def test_a_broken_condition_does_not_stop_the_others(prom, tmp_path):
    broken = parse_conditions(
        {
            "conditions": [
                {
                    "alert": "Broken",
                    "expr": "rate(stacksense_cpu_usage_ratio)",
                    "severity": "warning",
                },
                {
                    "alert": "AnyCpu",
                    "metric": "stacksense_cpu_usage_ratio",
                    "op": ">=",
                    "threshold": 0.7,
                    "severity": "info",
                },
            ]
        },
        "test",
    )
    engine = make_engine(prom, tmp_path, conditions=broken)
    report = engine.run_cycle(T0 + 50 * M)
    assert report.ok
    firing = {a.labels["server"] for a in engine.tracker.firing() if a.condition == "AnyCpu"}
    assert firing == {"y1", "cpuhot"}
    assert engine.counters.condition_errors == {"Broken": 1}
    # info conditions do not turn a server to warning
    assert report.statuses["y1"] == "online"


def test_anomaly_scores_published_per_server_and_metric(prom, tmp_path):
    engine = make_engine(prom, tmp_path)
    report = engine.run_cycle(T0 + 50 * M)
    assert ("g1", "cpu") in report.anomalies
    assert ("g1", "network") in report.anomalies
    assert report.anomalies[("g1", "network")].value == pytest.approx(2000.0)  # rx + tx bytes/s
    assert 0.0 <= report.anomalies[("g1", "cpu")].score <= 1.0
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    assert (
        registry.get_sample_value("stacksense_anomaly_score", {"server": "g1", "metric": "cpu"})
        is not None
    )
    # After a gap the missed points are replayed (catch-up), one query all the same.
    before = engine.anomalies.get_state()
    queries = engine.client.queries
    engine.run_cycle(T0 + 55 * M)
    assert engine.client.queries - queries <= 10
    key = next(k for k in engine.anomalies.get_state()["keys"] if k[0] == {"t": ["g1", "cpu"]})
    old = next(k for k in before["keys"] if k[0] == {"t": ["g1", "cpu"]})
    assert key[1]["n"] - old[1]["n"] == 20  # 5 minutes of 15 s points


def test_backtest_over_prometheus_history(prom, capsys, monkeypatch):
    from rules.cli import main

    # Small chunks so that the 18-minute window takes several range queries.
    monkeypatch.setattr("rules.backtest.MAX_POINTS_PER_QUERY", 20)
    code = main(
        [
            "backtest",
            "--prometheus",
            prom.url,
            "--start",
            str(T0 + 40 * M),
            "--end",
            str(T0 + 58 * M),
            "--progress",
        ]
    )
    assert code == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if "HighCpuUsage" in line]
    assert len(lines) == 2, out
    assert lines[0].startswith(_iso(HOT_START + 5 * M) + "  FIRING")
    assert "server=cpuhot" in lines[0] and "value=0.95" in lines[0]
    assert lines[1].startswith(_iso(HOT_END) + "  RESOLVED")
    assert "Watchdog" in out and "condition alert(s) fired" in out
    assert "[##############################] " in err  # the progress bar completed


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def test_receiver_outage_is_counted_and_caught_up(prom, tmp_path):
    from rules.config import Receiver
    from tests.peers.alert_receiver import alert_receiver
    from tests.peers.util import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    warm(prom, tmp_path, T0 + 50 * M - 15)
    engine = make_engine(prom, tmp_path, receivers=(Receiver(url, timeout_seconds=2),))
    report = engine.run_cycle(T0 + 50 * M)
    assert report.ok  # the cycle completes with the receiver down
    failed = engine.counters.alerts_failed[url]
    assert failed >= 3 and engine.counters.alerts_sent[url] == 0  # 2 offline + Watchdog
    with alert_receiver(port=port) as receiver:
        engine.run_cycle(T0 + 50 * M + 15)
        names = {(a["labels"]["alertname"], a["labels"].get("server")) for a in receiver.alerts()}
        assert {("ServerOffline", "db1"), ("ServerOffline", "gone1"), ("Watchdog", None)} <= names
        assert ("ServerOffline", "never1") not in names  # never reached: pending, no page
        offline = next(a for a in receiver.alerts() if a["labels"].get("server") == "db1")
        assert offline["startsAt"] == rfc3339(T0 + 50 * M)  # the original start, not the retry
    assert engine.counters.alerts_sent[url] == failed


def test_metrics_exposition_passes_promtool_lint(prom, tmp_path):
    import subprocess

    from prometheus_client import generate_latest

    engine = make_engine(prom, tmp_path)
    for i in range(3):
        engine.run_cycle(T0 + 50 * M + 15 * i)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    text = generate_latest(registry)
    assert b'stacksense_server_health{color="red",server="r1"} 1.0' in text
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_check_config_has_prometheus_parse_the_expressions(prom, tmp_path, capsys):
    from rules.cli import main

    conds = tmp_path / "c.yml"
    conds.write_text(
        "conditions:\n"
        "  - {alert: Fine, expr: 'up == 0', severity: warning}\n"
        "  - {alert: Typo, expr: 'rate(up[5m]', severity: warning}\n"
    )
    assert main(["check-config", "--conditions", str(conds), "--prometheus", prom.url]) == 2
    err = capsys.readouterr().err
    assert "condition Typo: expr 'rate(up[5m]'" in err and "parse error" in err
    assert "Fine" not in err
    conds.write_text("conditions: [{alert: Fine, expr: 'up == 0', severity: warning}]\n")
    assert main(["check-config", "--conditions", str(conds), "--prometheus", prom.url]) == 0
    assert "all 6 condition expressions accepted" in capsys.readouterr().out


def test_queries_per_cycle_do_not_grow_with_conditions(prom, tmp_path):
    many = parse_conditions(
        {
            "conditions": [
                {
                    "alert": f"Cpu{i}",
                    "metric": "stacksense_cpu_usage_ratio",
                    "op": ">",
                    "threshold": i / 20,
                    "severity": "info",
                }
                for i in range(20)
            ]
        },
        "many",
    )
    engine = make_engine(prom, tmp_path, conditions=default_conditions() + many)
    report = engine.run_cycle(T0 + 50 * M)
    assert report.ok and report.queries == 6
    firing = {a.condition for a in engine.tracker.firing()}
    assert {"Cpu0", "Cpu13", "Watchdog"} <= firing and "Cpu19" not in firing  # cpuhot is 0.95
