"""Reading the rule engine, Prometheus and the exporter: short timeouts, tolerant of shapes.

Every function returns what it could read plus an error string for the page to show;
a peer that is down or answers something unexpected never makes a console page fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from alert_router.console.settings import ConsoleConfig

# The per-server figures of the fleet view: one fleet-wide query each (never one per server).
FLEET_QUERIES = {
    "cpu": "max by (server) (stacksense_cpu_usage_ratio)",
    "memory": "max by (server) (stacksense_memory_usage_ratio)",
    "disk": "max by (server) (stacksense_filesystem_usage_ratio)",
    "load": "max by (server) (node_load1)",
    "uptime": "max by (server) (node_time_seconds - node_boot_time_seconds)",
    "heartbeat": "max by (server) (max_over_time("
    "stacksense_last_heartbeat_timestamp_seconds[10m]))",
}


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def chart_queries(server: str) -> dict[str, tuple[str, str]]:
    """title -> (PromQL, unit) of one server's charts."""
    s = _esc(server)
    return {
        "CPU": (f'max(stacksense_cpu_usage_ratio{{server="{s}"}})', "ratio"),
        "Memory": (f'max(stacksense_memory_usage_ratio{{server="{s}"}})', "ratio"),
        "Disk (fullest filesystem)": (
            f'max(stacksense_filesystem_usage_ratio{{server="{s}"}})',
            "ratio",
        ),
        "Network (bytes/s in + out)": (
            f'sum(rate(node_network_receive_bytes_total{{server="{s}",device!="lo"}}[5m]))'
            f' + sum(rate(node_network_transmit_bytes_total{{server="{s}",device!="lo"}}[5m]))',
            "bytes",
        ),
        "Load (1 min)": (f'max(node_load1{{server="{s}"}})', "number"),
    }


@dataclass
class Fetched:
    """What a peer answered, or why it could not be read."""

    data: Any = None
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def get_json(url: str, timeout: float, params: dict[str, Any] | None = None) -> Fetched:
    """GET `url` as JSON; errors name the URL without its query (which may hold a label)."""
    try:
        resp = requests.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        return Fetched(error=f"cannot reach {url.split('?')[0]}: {type(exc).__name__}")
    if resp.status_code == 404:
        return Fetched(error="not found")
    if resp.status_code != 200:
        return Fetched(error=f"{url.split('?')[0]} answered HTTP {resp.status_code}")
    try:
        return Fetched(resp.json())
    except ValueError:
        return Fetched(error=f"{url.split('?')[0]} did not answer JSON")


def rules_servers(cfg: ConsoleConfig) -> Fetched:
    """The rule engine's fleet: {"servers": {name: view}, "pipeline": ...}."""
    got = get_json(f"{cfg.rules_url}/api/v1/servers", cfg.request_timeout)
    if got.error:
        return got
    body = got.data if isinstance(got.data, dict) else {}
    servers = body.get("servers")
    got.data = (
        {k: v for k, v in servers.items() if isinstance(v, dict)}
        if isinstance(servers, dict)
        else {}
    )
    got.extra = {
        "pipeline": body.get("pipeline") if isinstance(body.get("pipeline"), dict) else {},
        "time": body.get("time"),
    }
    return got


def rules_server(cfg: ConsoleConfig, name: str) -> Fetched:
    """One server's view from the rule engine (with its status history)."""
    got = get_json(f"{cfg.rules_url}/api/v1/servers/{quote(name, safe='')}", cfg.request_timeout)
    if not got.error and not isinstance(got.data, dict):
        return Fetched(error="the rule engine answered an unexpected shape")
    return got


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def prom_instant(cfg: ConsoleConfig, expr: str) -> Fetched:
    """An instant vector as {server label: value}."""
    got = get_json(f"{cfg.prometheus_url}/api/v1/query", cfg.request_timeout, {"query": expr})
    if got.error:
        return got
    out: dict[str, float] = {}
    try:
        for item in got.data["data"]["result"]:
            value = _number(item["value"][1])
            if value is not None:
                out[str(item["metric"].get("server", ""))] = value
    except (KeyError, TypeError, IndexError):
        return Fetched(error="Prometheus answered an unexpected shape")
    return Fetched(out)


def prom_range(cfg: ConsoleConfig, expr: str, start: float, end: float, step: float) -> Fetched:
    """A range query's first series as [(t, value)] (NaN and gaps dropped)."""
    got = get_json(
        f"{cfg.prometheus_url}/api/v1/query_range",
        cfg.request_timeout,
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
    )
    if got.error:
        return got
    try:
        result = got.data["data"]["result"]
        values = result[0]["values"] if result else []
        points = [(float(t), v) for t, raw in values if (v := _number(raw)) is not None]
    except (KeyError, TypeError, IndexError, ValueError):
        return Fetched(error="Prometheus answered an unexpected shape")
    return Fetched(points)


def fleet_metrics(cfg: ConsoleConfig) -> tuple[dict[str, dict[str, float]], list[str]]:
    """server -> {cpu, memory, disk, load, uptime, heartbeat}, and errors met."""
    out: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    for key, expr in FLEET_QUERIES.items():
        got = prom_instant(cfg, expr)
        if got.error:
            if got.error not in errors:
                errors.append(got.error)
            continue
        for server, value in got.data.items():
            out.setdefault(server, {})[key] = value
    return out, errors
