"""Grafana dashboards and provisioning: generated, laid out, typed, and their PromQL runs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.deploy.shipped import DASHBOARDS, OVERVIEW, REPO, expressions, overview, panels
from tests.deploy.tools import npm_packages
from tests.peers.prometheus import Prometheus, backfill, prometheus

GRAFANA_SCHEMA = "@grafana/schema@11.6.0"  # the Grafana version docker-compose.yml runs
SERVERS = ("web1", "db-2")


def test_committed_json_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_overview", DASHBOARDS / "generate_overview.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == OVERVIEW.read_text(), (
        "run `python3 dashboards/generate_overview.py` and commit the JSON"
    )


def test_layout_is_valid() -> None:
    board = overview()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area


def test_every_query_uses_the_datasource_variable() -> None:
    board = overview()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["server"]["includeAll"] and variables["server"]["multi"]
    for p in panels(board):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"]


def test_the_contract_metrics_are_shown() -> None:
    exprs = " ".join(e for _, e in expressions(overview()))
    for metric in (
        "stacksense_server_status",
        "stacksense_server_health_score",
        "stacksense_anomaly_score",
        "stacksense_heartbeat_age_seconds",
        "stacksense_probe_success",
        "stacksense_probe_duration_seconds",
        "stacksense_probe_failure",
        "stacksense_cpu_usage_ratio",
        "stacksense_memory_usage_ratio",
        "stacksense_filesystem_usage_ratio",
        "stacksense_router_notifications_sent_total",
        "stacksense_rules_cycle_duration_seconds",
    ):
        assert metric in exprs, metric


def test_provisioning_matches_the_compose_mounts() -> None:
    (source,) = yaml.safe_load(
        (DASHBOARDS / "provisioning/datasources/stacksense.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    current = {v["name"]: v for v in overview()["templating"]["list"]}["datasource"]["current"]
    assert current["value"] == source["uid"]
    (provider,) = yaml.safe_load(
        (DASHBOARDS / "provisioning/dashboards/stacksense.yml").read_text()
    )["providers"]
    compose = (REPO / "docker-compose.yml").read_text()
    assert f"./dashboards:{provider['options']['path']}:ro" in compose
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in compose


def test_node_exporter_full_is_shipped_with_its_licence() -> None:
    board = json.loads((DASHBOARDS / "node-exporter-full.json").read_text())
    assert board["title"] == "Node Exporter Full"
    licence = (DASHBOARDS / "LICENSE.node-exporter-full").read_text()
    assert "Apache License" in licence
    # Its host picker lists node_uname_info by job, which the probe job provides.
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "node_uname_info" in json.dumps(variables["job"]["query"])
    assert "4b1729d1" in (DASHBOARDS / "README.md").read_text()


# ----------------------------------------------------------- Grafana's own TypeScript types

TS_PRELUDE = """import type { Dashboard } from "@grafana/schema";
// Grafana's types use enums where JSON carries their string values: Loose<T> turns each
// string enum into the union of its values and keeps every other check (unknown keys too).
type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[]
  : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;
export const dashboard: Loose<Dashboard> = """


@pytest.fixture(scope="module")
def typescript() -> Path:
    """A directory with @grafana/schema and typescript installed."""
    return npm_packages(GRAFANA_SCHEMA, "typescript@5")


def test_overview_type_checks_against_grafana_schema(typescript: Path) -> None:
    # One compilation checks both ways: the dashboard must type-check, and a copy with an
    # unknown panel key must not (else tsc reports the unused @ts-expect-error).
    broken = overview()
    panels(broken)[0]["gridPosition"] = {}
    (typescript / "check.ts").write_text(
        TS_PRELUDE
        + json.dumps(overview(), indent=1)
        + ";\n"
        + "// @ts-expect-error: an unknown key must be rejected\n"
        + "export const broken: Loose<Dashboard> = "
        + json.dumps(broken)
        + ";\n"
    )
    out = subprocess.run(
        [str(typescript / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "check.ts"],
        cwd=typescript,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# ----------------------------------------------------------- PromQL against a real Prometheus


def _series(
    lines: list[str], name: str, labels: dict[str, str], values: list[float], times: list[float]
) -> None:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    lines.extend(f"{name}{{{label_text}}} {v} {t:.0f}" for v, t in zip(values, times, strict=True))


def synthetic_history(end: float) -> str:
    """20 minutes of every series the overview reads, labelled as the contracts say."""
    times = [end - 15 * i for i in range(80, -1, -1)]
    flat = [1.0] * len(times)
    rising = [1000.0 * i for i in range(len(times))]
    lines: list[str] = []
    rules = {"job": "stacksense-rules", "instance": "rules:9817"}
    exporter = {"job": "stacksense-exporter", "instance": "exporter:9816"}
    router = {"job": "stacksense-router", "instance": "router:9818"}
    for s in SERVERS:
        probe = {"job": "stacksense-probe", "instance": s, "server": s}
        for status in ("online", "warning", "offline", "suspended"):
            _series(
                lines,
                "stacksense_server_status",
                {**rules, "server": s, "status": status},
                [1.0 if status == "online" else 0.0] * len(times),
                times,
            )
        _series(lines, "stacksense_server_health_score", {**rules, "server": s}, flat, times)
        _series(
            lines, "stacksense_anomaly_score", {**rules, "server": s, "metric": "cpu"}, flat, times
        )
        _series(
            lines,
            "stacksense_condition_firing",
            {**rules, "server": s, "alertname": "HighCpuUsage", "severity": "warning"},
            flat,
            times,
        )
        _series(lines, "stacksense_heartbeat_age_seconds", {**exporter, "server": s}, flat, times)
        for name in (
            "stacksense_probe_success",
            "stacksense_probe_duration_seconds",
            "stacksense_cpu_usage_ratio",
            "stacksense_memory_usage_ratio",
            "stacksense_swap_usage_ratio",
            "node_load1",
        ):
            _series(lines, name, probe, flat, times)
        _series(lines, "stacksense_probe_failure", {**probe, "reason": "timeout"}, flat, times)
        _series(
            lines,
            "stacksense_collector_success",
            {**probe, "collector": "cpu"},
            [0.0] * len(times),
            times,
        )
        _series(
            lines, "stacksense_filesystem_usage_ratio", {**probe, "mountpoint": "/"}, flat, times
        )
        for direction in ("receive", "transmit"):
            _series(
                lines,
                f"node_network_{direction}_bytes_total",
                {**probe, "device": "eth0"},
                rising,
                times,
            )
    for labels in (rules, exporter, router):
        _series(lines, "up", labels, flat, times)
    _series(lines, "stacksense_exporter_config_last_reload_successful", exporter, flat, times)
    _series(lines, "stacksense_rules_config_last_reload_successful", rules, flat, times)
    _series(lines, "stacksense_router_config_last_reload_successful", router, flat, times)
    _series(lines, "stacksense_rules_cycle_duration_seconds", rules, flat, times)
    _series(lines, "stacksense_rules_failed_cycles_total", rules, rising, times)
    receiver = {**router, "receiver": "ops", "integration": "email"}
    _series(lines, "stacksense_router_notifications_sent_total", receiver, rising, times)
    _series(
        lines,
        "stacksense_router_notifications_failed_total",
        {**receiver, "reason": "timeout"},
        rising,
        times,
    )
    _series(lines, "stacksense_router_outbox_depth", router, flat, times)
    _series(
        lines, "stacksense_router_alerts_received_total", {**router, "source": "v2"}, rising, times
    )
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, float]]:
    tmp = tmp_path_factory.mktemp("dash-prom")
    end = float(int(time.time()) - 60)
    backfill(synthetic_history(end), tmp / "data")
    with prometheus(tmp, data_dir=tmp / "data") as prom:
        yield prom, end


def substitute(expr: str, server: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$server", server)


@pytest.mark.parametrize("server", ["web1", ".+"], ids=["one-server", "all-servers"])
def test_every_overview_query_parses_and_returns_data(
    history: tuple[Prometheus, float], server: str
) -> None:
    prom, end = history
    empty = []
    for title, expr in expressions(overview()):
        # prom.query raises on Prometheus' error envelope, e.g. a parse error.
        if not prom.query(substitute(expr, server), time=end):
            empty.append(f"{title}: {expr}")
    assert not empty, "queries with no data on contract-shaped series:\n" + "\n".join(empty)


def test_server_variable_lists_the_inventory(history: tuple[Prometheus, float]) -> None:
    prom, end = history
    variable = {v["name"]: v for v in overview()["templating"]["list"]}["server"]
    query = variable["query"]["query"]
    metric = query.removeprefix("label_values(").split(",")[0]
    body = requests.get(
        f"{prom.url}/api/v1/label/server/values",
        params={"match[]": metric, "start": end - 600, "end": end},
        timeout=10,
    ).json()
    assert body["status"] == "success"
    assert sorted(body["data"]) == sorted(SERVERS)


def test_a_broken_expression_is_caught(history: tuple[Prometheus, float]) -> None:
    prom, end = history
    with pytest.raises(RuntimeError, match="parse error"):
        prom.query("sum by (server (stacksense_probe_success)", time=end)
