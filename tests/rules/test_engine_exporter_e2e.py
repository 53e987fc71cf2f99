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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.main",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--local-name",
            "e2e-host",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok,
            timeout=20,
            what="exporter ready",
        )
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def test_engine_decides_from_the_live_exporter(tmp_path, exporter):
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "stacksense-exporter", "static_configs": [{"targets": [exporter]}]},
            {
                "job_name": "stacksense-probe",
                "metrics_path": "/probe",
                "http_sd_configs": [{"url": f"http://{exporter}/sd", "refresh_interval": "5s"}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter},
                ],
            },
        ],
    }
    with prometheus(tmp_path, config) as p:
        engine = Engine(
            EngineConfig(
                prometheus_url=p.url, state_file=tmp_path / "state.json", interval_seconds=1.0
            ),
            default_conditions(),
        )

        def decided():
            r = engine.run_cycle()
            h = r.health.get("e2e-host")
            return (
                r
                if r.statuses.get("e2e-host") == "online" and h and "disk" in h.components
                else None
            )

        report = wait_for(decided, timeout=30, interval=0.5, what="e2e-host online with health")
        assert report.ok and report.queries <= 10
        health = report.health["e2e-host"]
        assert {"memory", "disk"} <= set(health.components)
        assert 0 <= health.score <= 100 and health.color in ("green", "yellow", "red")
        assert ("e2e-host", "memory") in report.anomalies
        assert any(r.labels["alertname"] == "Watchdog" for r in engine.book.records.values())


def test_real_probe_failures_reach_the_pending_warning(tmp_path, ssh_server, ssh_keys):
    """The real exporter probing a real sshd host, a refused port and a host whose key is not
    in known_hosts: the never-reached ones are pending, never offline, and their warning says
    why, from the exporter's own failure metrics."""
    from rules.config import Receiver
    from tests.exporter.harness import running_exporter, server_entry, write_inventory
    from tests.peers.alert_receiver import alert_receiver

    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    servers = [
        server_entry("ok1", ssh_server),
        server_entry("refused1", ssh_server, port=free_port()),
        server_entry("hk1", ssh_server, host="localhost"),
    ]  # key known for 127.0.0.1
    inv = write_inventory(
        tmp_path / "servers.yml",
        servers,
        {"default": {"key_file": str(ssh_keys.client_key)}},
        known,
    )
    with running_exporter(inv) as exp, alert_receiver() as receiver:
        address = exp.url.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {"job_name": "stacksense-exporter", "static_configs": [{"targets": [address]}]},
                {
                    "job_name": "stacksense-probe",
                    "metrics_path": "/probe",
                    "http_sd_configs": [{"url": f"http://{address}/sd", "refresh_interval": "5s"}],
                    "relabel_configs": [
                        {"source_labels": ["__address__"], "target_label": "__param_target"},
                        {"source_labels": ["__param_target"], "target_label": "instance"},
                        {"target_label": "__address__", "replacement": address},
                    ],
                },
            ],
        }
        with prometheus(tmp_path, config) as p:
            engine = Engine(
                EngineConfig(
                    prometheus_url=p.url,
                    state_file=tmp_path / "state.json",
                    interval_seconds=1.0,
                    offline_after_seconds=5.0,
                    grace_offline_after_seconds=5.0,
                    pending_timeout_seconds=3.0,
                    receivers=(Receiver(receiver.url),),
                    anomalies_enabled=False,
                ),
                default_conditions(),
            )

            def warned() -> dict[str, dict] | None:
                report = engine.run_cycle()
                got = {
                    a["labels"]["server"]: a
                    for a in receiver.alerts()
                    if a["labels"]["alertname"] == "ServerUnreachable"
                }
                return got if report.statuses.get("ok1") == "online" and len(got) == 2 else None

            got = wait_for(warned, timeout=60, interval=0.5, what="two ServerUnreachable")
            assert engine.report.statuses["refused1"] == engine.report.statuses["hk1"] == "pending"
            refused = got["refused1"]["annotations"]
            assert refused["reason"] == "refused" and refused["reason_text"] == "connection refused"
            assert "refused1" in refused["last_error"] and "refused" in refused["last_error"]
            hk = got["hk1"]["annotations"]
            assert (hk["reason"], hk.get("detail")) == ("host_key", "host_key_unknown")
            assert hk["summary"] == "hk1 was never reached (host key not in known_hosts)"
            assert not [a for a in receiver.alerts() if a["labels"]["alertname"] == "ServerOffline"]
