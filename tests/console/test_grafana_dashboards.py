"""The server and pipeline Grafana dashboards: generated, valid, and every query (panels,
annotations, the server variable) returns data from a real Prometheus holding series
shaped as the exporter, the rule engine and the router publish them."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.peers.prometheus import Prometheus, backfill, prometheus

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
BOARDS = ("stacksense-server.json", "stacksense-pipeline.json")
SERVERS = ("web1", "db1")


def generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_server_pipeline", DASHBOARDS / "generate_server_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def board(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DASHBOARDS / name).read_text())
    return result


def queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
    out += [
        (f"annotation {a['name']}", a["expr"]) for a in dash["annotations"]["list"] if "expr" in a
    ]
    return out


def test_committed_json_is_what_the_generator_writes():
    gen = generator()
    for name in BOARDS:
        assert (DASHBOARDS / name).read_text() == gen.render(name), (
            "run `python3 dashboards/generate_server_pipeline.py` and commit the JSON"
        )


def test_uids_are_stable_and_layout_is_valid():
    assert [board(n)["uid"] for n in BOARDS] == ["stacksense-server", "stacksense-pipeline"]
    for name in BOARDS:
        dash = board(name)
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in dash["panels"]:
            pos = p["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, p["title"])
            if p["type"] != "row":
                assert p["datasource"]["uid"] == "${datasource}", (name, p["title"])
    variables = {v["name"] for v in board("stacksense-server.json")["templating"]["list"]}
    assert variables == {"datasource", "server"}


def series(
    lines: list[str], name: str, labels: dict[str, str], value: Any, times: list[float]
) -> None:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for i, t in enumerate(times):
        v = value(i) if callable(value) else value
        lines.append(f"{name}{{{text}}} {v} {t:.0f}")


def history(end: float) -> str:
    times = [end - 15 * i for i in range(80, -1, -1)]

    def rising(i: int) -> float:
        return 1000.0 * i

    lines: list[str] = []
    rules = {"job": "stacksense-rules", "instance": "rules:9817"}
    exporter = {"job": "stacksense-exporter", "instance": "exporter:9816"}
    router = {"job": "stacksense-router", "instance": "router:9818"}
    for s in SERVERS:
        probe = {"job": "stacksense-probe", "instance": s, "server": s}
        for status in ("pending", "online", "warning", "offline", "suspended", "unknown"):
            series(
                lines,
                "stacksense_server_status",
                {**rules, "server": s, "status": status},
                lambda i, st=status: 1.0 if st == ("online" if i < 40 else "offline") else 0.0,
                times,
            )
        series(lines, "stacksense_server_health_score", {**rules, "server": s}, 90.0, times)
        series(
            lines, "stacksense_anomaly_score", {**rules, "server": s, "metric": "cpu"}, 0.9, times
        )
        series(
            lines,
            "stacksense_anomaly_active",
            {**rules, "server": s, "metric": "cpu", "severity": "warning"},
            1.0,
            times,
        )
        series(
            lines,
            "stacksense_condition_firing",
            {**rules, "server": s, "alertname": "HighCpuUsage", "severity": "warning"},
            1.0,
            times,
        )
        series(lines, "stacksense_heartbeat_age_seconds", {**exporter, "server": s}, 5.0, times)
        for name in (
            "stacksense_probe_duration_seconds",
            "stacksense_cpu_usage_ratio",
            "stacksense_memory_usage_ratio",
            "node_load1",
        ):
            series(lines, name, probe, 0.5, times)
        series(lines, "stacksense_probe_failure", {**probe, "reason": "timeout"}, 1.0, times)
        series(lines, "stacksense_filesystem_usage_ratio", {**probe, "mountpoint": "/"}, 0.5, times)
        for direction in ("receive", "transmit"):
            series(
                lines,
                f"node_network_{direction}_bytes_total",
                {**probe, "device": "eth0"},
                rising,
                times,
            )
    for name, value in (
        ("stacksense_rules_cycle_duration_seconds", 0.2),
        ("stacksense_rules_interval_seconds", 15.0),
        ("stacksense_rules_last_successful_cycle_timestamp_seconds", end - 10),
        ("stacksense_rules_pipeline_down", 0.0),
    ):
        series(lines, name, rules, value, times)
    receiver = {**router, "receiver": "ops", "integration": "email"}
    series(lines, "stacksense_router_notifications_sent_total", receiver, rising, times)
    for name in ("failed", "given_up"):
        series(
            lines,
            f"stacksense_router_notifications_{name}_total",
            {**receiver, "reason": "timeout"},
            rising,
            times,
        )
    series(lines, "stacksense_router_outbox_depth", router, 3.0, times)
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, float]]:
    tmp = tmp_path_factory.mktemp("console-dash-prom")
    end = float(int(time.time()) - 60)
    backfill(history(end), tmp / "data")
    with prometheus(tmp, data_dir=tmp / "data") as p:
        yield p, end


@pytest.mark.parametrize("name", BOARDS)
def test_every_query_parses_and_returns_data(prom: tuple[Prometheus, float], name: str):
    p, end = prom
    empty = []
    for title, expr in queries(board(name)):
        concrete = expr.replace("$__rate_interval", "1m").replace("$server", "web1")
        if not p.query(concrete, time=end):  # raises on a parse error
            empty.append(f"{title}: {concrete}")
    assert not empty, "queries without data on contract-shaped series:\n" + "\n".join(empty)


def test_server_variable_lists_the_servers(prom: tuple[Prometheus, float]):
    p, end = prom
    variable = {v["name"]: v for v in board("stacksense-server.json")["templating"]["list"]}
    metric = variable["server"]["query"]["query"].removeprefix("label_values(").split(",")[0]
    body = requests.get(
        f"{p.url}/api/v1/label/server/values",
        params={"match[]": metric, "start": end - 600, "end": end},
        timeout=10,
    ).json()
    assert sorted(body["data"]) == sorted(SERVERS)
