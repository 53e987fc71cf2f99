"""The compose prometheus.yml and the overview dashboard, on a real exporter probing real sshd.

The exporter (in-process, from the exporter's test harness) probes a real sshd on
loopback; a real Prometheus runs prometheus.yml with the compose host names pointed
at it. Every overview query about probes, resources and heartbeats must return data,
so the dashboard and the exporter agree on names and labels, not just on a contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.shipped import CONFIG, expressions, job, overview
from tests.exporter.harness import running_exporter, server_entry, write_inventory
from tests.peers.prometheus import Prometheus, prometheus
from tests.peers.sshd import Sshd

RATE_INTERVAL = "15s"
# Panels fed by the exporter alone (the rest need the rule engine and the router).
EXPORTER_METRICS = (
    "stacksense_probe_",
    "stacksense_cpu_",
    "stacksense_memory_",
    "stacksense_swap_",
    "stacksense_filesystem_",
    "node_",
    "stacksense_heartbeat_age_seconds",
    "stacksense_exporter_config_last_reload",
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, ssh_server: Sshd) -> Iterator[Prometheus]:
    tmp = tmp_path_factory.mktemp("live-exporter")
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(ssh_server.known_hosts_line())
    inventory = write_inventory(
        tmp / "servers.yml",
        [server_entry("web1", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known_hosts,
    )
    with running_exporter(inventory) as exporter:
        address = exporter.url.removeprefix("http://")
        config: dict[str, Any] = yaml.safe_load(
            CONFIG.read_text().replace("exporter:9816", address)
        )
        config.pop("alerting")  # no router here
        config["rule_files"] = []
        config["global"].update(scrape_interval="3s", evaluation_interval="3s")
        probe = job(config, "stacksense-probe")
        probe.update(scrape_interval="3s", scrape_timeout="3s")
        probe["http_sd_configs"][0]["refresh_interval"] = "1s"
        with prometheus(tmp, config) as prom:
            prom.wait_for_series(
                'stacksense_probe_success{job="stacksense-probe", '
                'instance="web1", server="web1"} == 1',
                timeout=40,
            )
            # rate() needs two probes inside its window.
            prom.wait_for_series(
                f'rate(node_network_receive_bytes_total{{job="stacksense-probe"}}'
                f"[{RATE_INTERVAL}])",
                timeout=40,
            )
            yield prom


def test_exporter_panels_show_data_for_a_real_host(live: Prometheus) -> None:
    checked, empty = 0, []
    for title, expr in expressions(overview()):
        if not any(metric in expr for metric in EXPORTER_METRICS):
            continue
        query = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$server", "web1")
        if "== 0" in query:
            continue  # failing collectors: empty when the host is healthy, as it should be
        checked += 1
        if not live.query(query):
            empty.append(f"{title}: {query}")
    assert checked >= 10
    assert not empty, "no data from the real exporter for:\n" + "\n".join(empty)


def test_heartbeats_come_from_the_exporter_job(live: Prometheus) -> None:
    result = live.wait_for_series(
        'stacksense_heartbeat_age_seconds{job="stacksense-exporter", server="web1"}'
    )
    assert float(result[0]["value"][1]) < 60
