"""End to end with the real exporter: stacksense-exporter (local mode) -> Prometheus
(http_sd + multi-target relabeling, as prometheus.yml does) -> the rule engine."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from rules.conditions import default_conditions
from rules.config import EngineConfig
from rules.engine import Engine
from tests.peers.prometheus import prometheus
from tests.peers.util import free_port, stop, wait_for


@pytest.fixture(scope="module")
def exporter(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("exporter") / "exporter.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "exporter.main", "--web.listen-address",
                             f"127.0.0.1:{port}", "--local-name", "e2e-host"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok,
                 timeout=20, what="exporter ready")
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def test_engine_decides_from_the_live_exporter(tmp_path, exporter):
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "stacksense-exporter", "static_configs": [{"targets": [exporter]}]},
            {"job_name": "stacksense-probe", "metrics_path": "/probe",
             "http_sd_configs": [{"url": f"http://{exporter}/sd", "refresh_interval": "5s"}],
             "relabel_configs": [
                 {"source_labels": ["__address__"], "target_label": "__param_target"},
                 {"source_labels": ["__param_target"], "target_label": "instance"},
                 {"target_label": "__address__", "replacement": exporter}]},
        ],
    }
    with prometheus(tmp_path, config) as p:
        engine = Engine(EngineConfig(prometheus_url=p.url, state_file=tmp_path / "state.json",
                                     interval_seconds=1.0), default_conditions())

        def decided():
            r = engine.run_cycle()
            h = r.health.get("e2e-host")
            return r if r.statuses.get("e2e-host") == "online" and h and "disk" in h.components \
                else None

        report = wait_for(decided, timeout=30, interval=0.5, what="e2e-host online with health")
        assert report.ok and report.queries <= 10
        health = report.health["e2e-host"]
        assert {"memory", "disk"} <= set(health.components)
        assert 0 <= health.score <= 100 and health.color in ("green", "yellow", "red")
        assert ("e2e-host", "memory") in report.anomalies
        assert any(r.labels["alertname"] == "Watchdog" for r in engine.book.records.values())
