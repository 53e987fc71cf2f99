"""A real Prometheus discovers targets through /sd, scrapes /probe and /metrics, answers queries."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.exporter.harness import running_exporter, server_entry, write_inventory
from tests.peers.prometheus import prometheus
from tests.peers.sshd import Sshd


def scrape_config(exporter_address: str) -> dict:
    """The multi-target pattern, as prometheus.yml and the docs show it."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            {
                "job_name": "stacksense-probe",
                "metrics_path": "/probe",
                "http_sd_configs": [
                    {"url": f"http://{exporter_address}/sd", "refresh_interval": "1s"}
                ],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter_address},
                ],
            },
            {
                "job_name": "stacksense-exporter",
                "static_configs": [{"targets": [exporter_address]}],
            },
        ],
    }


def test_prometheus_scrapes_probes_and_heartbeats(tmp_path: Path, ssh_server: Sshd) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [
            server_entry("web1", ssh_server, labels={"env": "prod"}),
            server_entry("paused", ssh_server, suspended=True),
        ],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    with running_exporter(inv) as exp:
        address = urlsplit(exp.url).netloc
        with prometheus(tmp_path, scrape_config(address)) as prom:
            load = prom.wait_for_series('node_load1{job="stacksense-probe"}')
            assert load[0]["metric"]["instance"] == "web1"
            assert load[0]["metric"]["server"] == "web1"
            assert load[0]["metric"]["env"] == "prod"
            ok = prom.wait_for_series('stacksense_probe_success{instance="web1"} == 1')
            assert ok
            beats = prom.wait_for_series(
                'time() - stacksense_last_heartbeat_timestamp_seconds{server="web1"} < 30'
            )
            assert beats[0]["metric"]["source"] == "ssh"
            # The suspended server is left out of discovery: never probed.
            assert prom.query('up{job="stacksense-probe",instance="paused"}') == []
            assert prom.query('stacksense_server_suspended{server="paused"} == 1')
