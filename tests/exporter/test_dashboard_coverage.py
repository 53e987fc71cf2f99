"""The first two rows of "Node Exporter Full" show data from StackSense's collectors.

A real Prometheus scrapes the collectors (the round-trip command run locally
with /bin/sh, served on loopback) every second; once rate() has two samples,
every target of the rows "Quick CPU / Mem / Disk" and "Basic CPU / Mem / Net /
Disk" is evaluated with the dashboard's variables substituted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dashboard_coverage import (
    DASHBOARD,
    FIRST_ROWS,
    OURS,
    load_panels,
    panels_with_data,
    scrape_config,
    serve_collectors,
    substitute,
)
from tests.peers.prometheus import Prometheus, prometheus
from tests.peers.util import free_port

RATE_INTERVAL = "10s"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if not DASHBOARD.is_file():
        pytest.fail(f"{DASHBOARD} missing: the compat dashboard is shared project material")
    port = free_port()
    tmp: Path = tmp_path_factory.mktemp("coverage")
    with (
        serve_collectors(port),
        prometheus(tmp, scrape_config({OURS: f"127.0.0.1:{port}"}, 1.0)) as server,
    ):
        # rate() over the dashboard's interval needs two samples of a counter
        server.wait_for_series(
            f'rate(node_cpu_seconds_total{{instance="{OURS}"}}[{RATE_INTERVAL}])', timeout=40
        )
        yield server


def test_substitute_dashboard_variables() -> None:
    expr = 'rate(x{instance="$node",job="$job"}[$__rate_interval]) + ${node}'
    assert substitute(expr, node="h1", job="node", rate_interval="1m") == (
        'rate(x{instance="h1",job="node"}[1m]) + h1'
    )


def test_first_two_rows_are_found() -> None:
    rows = [p for p in load_panels() if p.row in FIRST_ROWS]
    assert len(rows) == 15
    assert {p.title for p in rows} >= {"CPU Busy", "RAM Used", "Root FS Used", "Uptime"}


def test_first_two_rows_show_data(prom: Prometheus) -> None:
    panels = [p for p in load_panels() if p.row in FIRST_ROWS]
    shown = panels_with_data(prom.query, panels, node=OURS, rate_interval=RATE_INTERVAL)
    missing = [p.title for p, ok in zip(panels, shown, strict=True) if not ok]
    assert not missing, f"panels without data: {missing}"


def test_every_target_of_the_first_rows_returns_data(prom: Prometheus) -> None:
    # Stricter than "the panel shows something": each series of these panels is there,
    # except what this kernel does not have (IRQ pressure needs Linux 6.1+ with
    # CONFIG_IRQ_TIME_ACCOUNTING; node_exporter cannot show it here either).
    absent = [] if Path("/proc/pressure/irq").exists() else ["node_pressure_irq_"]
    empty = []
    for panel in (p for p in load_panels() if p.row in FIRST_ROWS):
        for expr in panel.exprs:
            if any(name in expr for name in absent):
                continue
            query = substitute(expr, node=OURS, job="node", rate_interval=RATE_INTERVAL)
            if not prom.query(query):
                empty.append(f"{panel.title}: {expr}")
    assert not empty, "\n".join(empty)


def test_values_are_plausible(prom: Prometheus) -> None:
    def one(expr: str) -> float:
        result = prom.query(substitute(expr, node=OURS, job="node", rate_interval="10s"))
        assert len(result) == 1, expr
        return float(result[0]["value"][1])

    busy = one('100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle",instance="$node"}[10s])))')
    assert 0 <= busy <= 100
    ram = one(
        '(1 - node_memory_MemAvailable_bytes{instance="$node"}'
        ' / node_memory_MemTotal_bytes{instance="$node"}) * 100'
    )
    assert 0 < ram < 100
    assert one('node_time_seconds{instance="$node"} - node_boot_time_seconds{instance="$node"}') > 0
