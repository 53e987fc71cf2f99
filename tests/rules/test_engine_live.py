"""The engine live: a real Prometheus scraping an exporter stand-in every second,
a real Alertmanager receiving the alerts, and Prometheus killed mid-cycle.

The stand-in serves the exporter's /metrics format with heartbeat values the
test sets; 20 minutes of `up` history are backfilled so that the fresh
Prometheus does not itself count as a monitoring outage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry

from rules.conditions import default_conditions
from rules.config import EngineConfig, Receiver
from rules.engine import Engine
from rules.metrics import EngineCollector
from tests.peers.alertmanager import Alertmanager, alertmanager
from tests.peers.metrics_server import MetricsServer, metrics_server
from tests.peers.openmetrics import History
from tests.peers.prometheus import backfill, prometheus
from tests.peers.util import stop, wait_for

SERVERS = ["live1", "live2"]
# Heartbeats never go back in time, so a server that "stops answering" is one that
# joins with an old heartbeat: late1 appears with a frozen value, later a fresh one.
FROZEN: dict[str, float] = {}


def exposition() -> str:
    now = time.time()
    lines = ["# TYPE stacksense_last_heartbeat_timestamp_seconds gauge"]
    for s in SERVERS:
        lines.append(
            f'stacksense_last_heartbeat_timestamp_seconds{{server="{s}",source="ssh"}} '
            f"{FROZEN.get(s, now - 1):.3f}"
        )
    lines.append("# TYPE stacksense_server_suspended gauge")
    lines += [f'stacksense_server_suspended{{server="{s}"}} 0' for s in SERVERS]
    lines.append("# TYPE stacksense_cpu_usage_ratio gauge")
    lines += [f'stacksense_cpu_usage_ratio{{server="{s}"}} 0.25' for s in SERVERS]
    return "\n".join(lines) + "\n"


def prom_config(target: str) -> dict:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "stacksense-exporter", "static_configs": [{"targets": [target]}]}
        ],
    }


def backfill_up(target: str, data_dir: Path) -> None:
    h = History()
    now = time.time()
    h.fill(
        "up",
        {"job": "stacksense-exporter", "instance": target},
        now - 1200,
        now - 30,
        15,
        lambda t: 1.0,
    )
    backfill(h.render(), data_dir)


@pytest.fixture(scope="module")
def exporter():
    with metrics_server(exposition) as server:
        yield server


@pytest.fixture(scope="module")
def prom(tmp_path_factory, exporter: MetricsServer):
    tmp = tmp_path_factory.mktemp("prom-live")
    backfill_up(exporter.address, tmp / "data")
    with prometheus(tmp, prom_config(exporter.address), data_dir=tmp / "data") as p:
        p.wait_for_series('stacksense_last_heartbeat_timestamp_seconds{server="live1"}')
        yield p


@pytest.fixture(scope="module")
def am(tmp_path_factory):
    config = {"route": {"receiver": "null", "group_wait": "1s"}, "receivers": [{"name": "null"}]}
    with alertmanager(tmp_path_factory.mktemp("am"), config) as a:
        yield a


def make_engine(
    prom_url: str,
    tmp_path: Path,
    am: Alertmanager | None = None,
    session: requests.Session | None = None,
    **overrides: Any,
) -> Engine:
    receivers = (Receiver(am.url),) if am else ()
    config = EngineConfig(
        prometheus_url=prom_url,
        state_file=tmp_path / "state.json",
        interval_seconds=1.0,
        prometheus_retries=1,
        prometheus_timeout_seconds=3.0,
        receivers=receivers,
        **overrides,
    )
    return Engine(config, default_conditions(), session=session)


def am_alerts(am: Alertmanager, name: str, server: str | None = None) -> list[dict]:
    return [
        a
        for a in am.alerts()
        if a["labels"].get("alertname") == name
        and (server is None or a["labels"].get("server") == server)
        and a["status"]["state"] == "active"
    ]


def test_offline_within_one_cycle_and_alerts_in_alertmanager(prom, am, tmp_path):
    # 20 s instead of 60 s: the engine must first have watched for the threshold.
    engine = make_engine(
        prom.url, tmp_path, am, offline_after_seconds=20.0, grace_offline_after_seconds=20.0
    )
    wait_for(
        lambda: (
            (r := engine.run_cycle()).ok
            and r.observable_since is not None
            and r.now - r.observable_since > 20
        ),
        timeout=60,
        interval=0.5,
        what="the pipeline observed for 20 s",
    )
    FROZEN["late1"] = time.time() - 16
    SERVERS.append("late1")
    try:
        wait_for(
            lambda: engine.run_cycle().statuses.get("late1") == "online",
            timeout=15,
            what="late1 online with a 16 s old heartbeat",
        )
        assert not engine.report.grace_active, engine.report
        cycles = []

        def offline():
            r = engine.run_cycle()
            cycles.append((r.now - FROZEN["late1"], r.statuses["late1"]))
            return r if r.statuses["late1"] == "offline" else None

        report = wait_for(offline, timeout=30, interval=0.3, what="late1 offline")
        # Every cycle decided by the heartbeat's age: offline from the first cycle past 20 s.
        assert all((status == "offline") == (age > 20) for age, status in cycles), cycles
        assert report.statuses["live2"] == "online"
        offline = wait_for(
            lambda: am_alerts(am, "ServerOffline", "late1"),
            timeout=15,
            what="ServerOffline in Alertmanager",
        )
        assert offline[0]["labels"]["severity"] == "critical"
        assert offline[0]["generatorURL"].endswith("/api/v1/servers/late1")
        assert am_alerts(am, "Watchdog"), "the dead man's switch reaches Alertmanager"
    finally:
        del FROZEN["late1"]
    wait_for(
        lambda: engine.run_cycle().statuses["late1"] == "online",
        timeout=15,
        what="late1 back online",
    )
    wait_for(
        lambda: not am_alerts(am, "ServerOffline", "late1"),
        timeout=15,
        what="ServerOffline resolved in Alertmanager",
    )
    online = wait_for(
        lambda: am_alerts(am, "ServerOnline", "late1"), timeout=15, what="ServerOnline notification"
    )
    assert online[0]["labels"]["severity"] == "info"
    assert engine.counters.alerts_failed == {am.url: 0}
    assert engine.counters.alerts_sent[am.url] > 0


class KillPrometheusMidCycle(requests.Session):
    """Kills Prometheus just before the engine's Nth query of the cycle."""

    def __init__(self, proc, at_query: int) -> None:
        super().__init__()
        self.proc, self.at_query, self.queries, self.armed = proc, at_query, 0, False

    def post(self, url, *args, **kwargs):  # type: ignore[override]
        if self.armed and "/api/v1/query" in url:
            self.queries += 1
            if self.queries == self.at_query:
                self.proc.kill()
                self.proc.wait()
        return super().post(url, *args, **kwargs)


def test_prometheus_killed_mid_cycle(tmp_path, exporter: MetricsServer, am):
    backfill_up(exporter.address, tmp_path / "data")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with prometheus(tmp_path / "a", prom_config(exporter.address), data_dir=tmp_path / "data") as p:
        p.wait_for_series('stacksense_last_heartbeat_timestamp_seconds{server="live2"}')
        session = KillPrometheusMidCycle(p.proc, at_query=3)
        engine = make_engine(p.url, tmp_path, am, session=session, pipeline_alert_after_seconds=2.0)
        wait_for(
            lambda: engine.run_cycle().statuses.get("live1") == "online",
            timeout=15,
            what="both servers online",
        )
        before = dict(engine.report.statuses)
        sent_before = engine.counters.alerts_sent[am.url]
        session.armed = True
        report = engine.run_cycle()
        assert not report.ok and "unavailable" in report.error
        # Neither online nor offline: unknown, every server, at once.
        assert report.statuses == dict.fromkeys(before, "unknown") and report.pipeline_down
        again = engine.run_cycle()  # Prometheus still down: the engine keeps running
        assert not again.ok and again.statuses == report.statuses
        assert engine.counters.alerts_sent[am.url] > sent_before  # firing alerts re-sent
        # The engine's own alert reaches Alertmanager without Prometheus.
        unreachable = wait_for(
            lambda: engine.run_cycle() and am_alerts(am, "StackSensePrometheusUnreachable"),
            timeout=20,
            interval=0.5,
            what="StackSensePrometheusUnreachable in Alertmanager",
        )
        assert unreachable[0]["labels"]["severity"] == "critical"
        assert "unknown" in unreachable[0]["annotations"]["description"]
        assert am_alerts(am, "Watchdog")  # what was firing is still sent as it was
        registry = CollectorRegistry()
        registry.register(EngineCollector(engine))
        assert registry.get_sample_value("stacksense_rules_prometheus_up") == 0.0
        assert registry.get_sample_value("stacksense_rules_prometheus_errors_total") >= 2
        assert registry.get_sample_value("stacksense_rules_failed_cycles_total") >= 3
        assert registry.get_sample_value("stacksense_rules_pipeline_down") == 1.0
        assert (
            registry.get_sample_value(
                "stacksense_server_status", {"server": "live1", "status": "unknown"}
            )
            == 1.0
        )
        assert (
            registry.get_sample_value(
                "stacksense_server_status", {"server": "live1", "status": "online"}
            )
            == 0.0
        )
        stop(p.proc)
    session.armed = False
    # Prometheus comes back on the same port and data: the engine catches up by itself.
    with prometheus(
        tmp_path / "b", prom_config(exporter.address), data_dir=tmp_path / "data", port=p.port
    ):
        report = wait_for(
            lambda: (r := engine.run_cycle()).ok and r.exporter_up and r,
            timeout=20,
            what="a successful cycle after restart",
        )
        assert set(report.statuses.values()) == {"online"}
        wait_for(
            lambda: engine.run_cycle() and not am_alerts(am, "StackSensePrometheusUnreachable"),
            timeout=20,
            interval=0.5,
            what="StackSensePrometheusUnreachable resolved",
        )
        assert not [
            r for r in engine.book.records.values() if r.labels["alertname"] == "ServerOffline"
        ]
        registry = CollectorRegistry()
        registry.register(EngineCollector(engine))
        assert registry.get_sample_value("stacksense_rules_prometheus_up") == 1.0


def test_server_removed_from_the_inventory_disappears_without_alert(prom, tmp_path):
    engine = make_engine(prom.url, tmp_path)
    SERVERS.append("temp1")
    try:
        wait_for(
            lambda: engine.run_cycle().statuses.get("temp1") == "online",
            timeout=15,
            what="temp1 online",
        )
    finally:
        SERVERS.remove("temp1")
    seen = []
    wait_for(
        lambda: seen.append(engine.run_cycle().statuses.get("temp1")) or seen[-1] is None,
        timeout=15,
        interval=0.3,
        what="temp1 gone",
    )
    assert set(seen) <= {"online", None}
    assert not [r for r in engine.book.records.values() if r.labels.get("server") == "temp1"]
