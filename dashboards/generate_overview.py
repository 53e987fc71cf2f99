"""Generate stacksense-overview.json, the StackSense fleet overview dashboard.

Run `python3 dashboards/generate_overview.py` after editing; a test checks that the
committed JSON is what this script writes, so the two never drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("stacksense-overview.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
PROBE = 'job="stacksense-probe", server=~"$server"'
SEL = 'server=~"$server"'
# Status as one number per server for the state timeline (the engine exports a state set).
STATUS_CODE = (
    "max by (server) ("
    f'0 * (stacksense_server_status{{{SEL}, status="online"}} == 1)'
    f' or 1 * (stacksense_server_status{{{SEL}, status="warning"}} == 1)'
    f' or 2 * (stacksense_server_status{{{SEL}, status="offline"}} == 1)'
    f' or 3 * (stacksense_server_status{{{SEL}, status="suspended"}} == 1)'
    f' or 4 * (stacksense_server_status{{{SEL}, status="pending"}} == 1)'
    f' or 5 * (stacksense_server_status{{{SEL}, status="unknown"}} == 1))'
)
STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "online", "color": "green", "index": 0},
            "1": {"text": "warning", "color": "yellow", "index": 1},
            "2": {"text": "offline", "color": "red", "index": 2},
            "3": {"text": "suspended", "color": "gray", "index": 3},
            "4": {"text": "pending", "color": "blue", "index": 4},
            "5": {"text": "unknown", "color": "purple", "index": 5},
        },
    }
]
OK_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "failed", "color": "red", "index": 0},
            "1": {"text": "ok", "color": "green", "index": 1},
        },
    }
]


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def row(self, title: str) -> None:
        self.y += self.row_h
        self.x, self.row_h = 0, 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "id": len(self.panels) + 1,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def target(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, table: bool = False
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }
    if table:
        t["format"] = "table"
    return t


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    minimum: float | None = None,
    maximum: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    transformations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "mappings": mappings or [],
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if thresholds or mappings else "palette-classic"},
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    p: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }
    if transformations:
        p["transformations"] = transformations
    return p


RATIO: dict[str, Any] = {
    "unit": "percentunit",
    "minimum": 0,
    "maximum": 1,
    "thresholds": [(None, "green"), (0.7, "yellow"), (0.85, "red")],
}


def build() -> dict[str, Any]:
    """The dashboard as a JSON-ready dict."""
    lay = Layout()
    lay.row("Fleet")
    lay.add(
        panel(
            "stat",
            "Servers by status",
            "How many servers are in each state now.",
            [
                target(
                    f"count by (status) (stacksense_server_status{{{SEL}}} == 1)",
                    "{{status}}",
                    instant=True,
                )
            ],
            options={"colorMode": "background", "graphMode": "none", "textMode": "value_and_name"},
        ),
        6,
        6,
    )
    lay.add(
        panel(
            "state-timeline",
            "Server status",
            "pending / online / warning / offline / suspended / unknown, "
            "as decided by the rule engine.",
            [target(STATUS_CODE, "{{server}}")],
            mappings=STATUS_MAPPINGS,
            thresholds=[(None, "green")],
            options={"showValue": "never", "mergeValues": True},
        ),
        18,
        6,
    )
    lay.add(
        panel(
            "bargauge",
            "Health score",
            "0-100 per server (100 = all resources idle).",
            [target(f"stacksense_server_health_score{{{SEL}}}", "{{server}}", instant=True)],
            minimum=0,
            maximum=100,
            thresholds=[(None, "red"), (50, "yellow"), (80, "green")],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        8,
    )
    lay.add(
        panel(
            "bargauge",
            "Heartbeat age",
            "Seconds since the last successful probe or push (offline after 60 s by default).",
            [target(f"stacksense_heartbeat_age_seconds{{{SEL}}}", "{{server}}", instant=True)],
            unit="s",
            thresholds=[(None, "green"), (60, "orange"), (600, "red")],
            options={"orientation": "horizontal", "displayMode": "basic"},
        ),
        8,
    )
    lay.add(
        panel(
            "table",
            "Firing conditions",
            "Threshold conditions firing now.",
            [target(f"stacksense_condition_firing{{{SEL}}} == 1", instant=True, table=True)],
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "Value": True,
                            "__name__": True,
                            "job": True,
                            "instance": True,
                        }
                    },
                }
            ],
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Anomaly scores",
            "Per server and metric; high scores mean the metric left its usual range.",
            [target(f"stacksense_anomaly_score{{{SEL}}}", "{{server}} {{metric}}")],
            minimum=0,
        ),
        24,
    )

    lay.row("Probes")
    lay.add(
        panel(
            "state-timeline",
            "Probe success",
            "Did the SSH probe succeed?",
            [target(f"stacksense_probe_success{{{PROBE}}}", "{{server}}")],
            mappings=OK_MAPPINGS,
            thresholds=[(None, "red"), (1, "green")],
            options={"showValue": "never", "mergeValues": True},
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Probe duration",
            "Wall time of one probe (one SSH round trip).",
            [target(f"stacksense_probe_duration_seconds{{{PROBE}}}", "{{server}}")],
            unit="s",
            minimum=0,
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Probe failures by reason",
            "Servers failing, by reason "
            "(timeout, refused, unreachable, auth, host_key, command, parse).",
            [target(f"sum by (reason) (stacksense_probe_failure{{{PROBE}}})", "{{reason}}")],
            minimum=0,
            options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True}},
        ),
        12,
    )
    lay.add(
        panel(
            "table",
            "Failing collectors",
            "Collectors that failed in the last probe.",
            [target(f"stacksense_collector_success{{{PROBE}}} == 0", instant=True, table=True)],
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                }
            ],
        ),
        12,
    )

    lay.row("Resources")
    for title, metric in [
        ("CPU usage", "stacksense_cpu_usage_ratio"),
        ("Memory usage", "stacksense_memory_usage_ratio"),
        ("Swap usage", "stacksense_swap_usage_ratio"),
    ]:
        lay.add(
            panel(
                "timeseries",
                title,
                f"{metric}, 0-1.",
                [target(f"{metric}{{{PROBE}}}", "{{server}}")],
                **RATIO,
            ),
            8,
        )
    lay.add(
        panel(
            "timeseries",
            "Disk usage",
            "Filesystem usage per mount point, 0-1.",
            [target(f"stacksense_filesystem_usage_ratio{{{PROBE}}}", "{{server}} {{mountpoint}}")],
            **RATIO,
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Load (1 min)",
            "node_load1 per server.",
            [target(f"node_load1{{{PROBE}}}", "{{server}}")],
            minimum=0,
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Network traffic",
            "Received (+) and sent (-) bytes per second, loopback excluded.",
            [
                target(
                    f"sum by (server) (rate(node_network_receive_bytes_total{{{PROBE}, "
                    f'device!="lo"}}[$__rate_interval]))',
                    "{{server}} in",
                ),
                target(
                    f"-sum by (server) (rate(node_network_transmit_bytes_total{{{PROBE}, "
                    f'device!="lo"}}[$__rate_interval]))',
                    "{{server}} out",
                    ref="B",
                ),
            ],
            unit="Bps",
        ),
        8,
    )

    lay.row("StackSense services")
    lay.add(
        panel(
            "state-timeline",
            "Services up",
            "Prometheus' scrape of each service.",
            [target('up{job=~"stacksense-.*"}', "{{job}} {{instance}}")],
            mappings=OK_MAPPINGS,
            thresholds=[(None, "red"), (1, "green")],
            options={"showValue": "never", "mergeValues": True},
        ),
        12,
    )
    lay.add(
        panel(
            "stat",
            "Config reloads",
            "1 when the last configuration reload worked.",
            [
                target(
                    "stacksense_exporter_config_last_reload_successful",
                    "exporter {{instance}}",
                    instant=True,
                ),
                target(
                    "stacksense_rules_config_last_reload_successful", "rules", ref="B", instant=True
                ),
                target(
                    "stacksense_router_config_last_reload_successful",
                    "router",
                    ref="C",
                    instant=True,
                ),
            ],
            mappings=OK_MAPPINGS,
            thresholds=[(None, "red"), (1, "green")],
            options={"colorMode": "background", "graphMode": "none"},
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Rule engine cycles",
            "Cycle time and whether Prometheus answered.",
            [
                target("stacksense_rules_cycle_duration_seconds", "cycle"),
                target(
                    "rate(stacksense_rules_failed_cycles_total[$__rate_interval])",
                    "failed cycles/s",
                    ref="B",
                ),
            ],
            unit="s",
            minimum=0,
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Router notifications",
            "Notifications sent and failed per second, by receiver.",
            [
                target(
                    "sum by (receiver) (rate(stacksense_router_notifications_sent_total"
                    "[$__rate_interval]))",
                    "sent {{receiver}}",
                ),
                target(
                    "sum by (receiver) (rate("
                    "stacksense_router_notifications_failed_total[$__rate_interval]))",
                    "failed {{receiver}}",
                    ref="B",
                ),
            ],
            unit="reqps",
            minimum=0,
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Router outbox and alerts",
            "Undelivered notifications and alerts received per second.",
            [
                target("stacksense_router_outbox_depth", "outbox depth"),
                target(
                    "sum(rate(stacksense_router_alerts_received_total[$__rate_interval]))",
                    "alerts received/s",
                    ref="B",
                ),
            ],
            minimum=0,
        ),
        8,
    )

    return {
        "title": "StackSense fleet overview",
        "uid": "stacksense-overview",
        "description": "Status, health, anomalies, heartbeats and probes of every server "
        "monitored by StackSense, and the services' own health.",
        "tags": ["stacksense"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 41,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "Node Exporter Full",
                "type": "link",
                "icon": "dashboard",
                "url": "/d/rYdddlPWk/node-exporter-full?var-job=stacksense-probe",
                "targetBlank": False,
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "tags": [],
                "tooltip": "per-host details",
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "stacksense-prometheus"},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                },
                {
                    "name": "server",
                    "label": "Server",
                    "type": "query",
                    "datasource": DS,
                    "query": {
                        "query": "label_values(stacksense_heartbeat_age_seconds, server)",
                        "refId": "StandardVariableQuery",
                    },
                    "current": {"text": "All", "value": "$__all"},
                    "hide": 0,
                    "includeAll": True,
                    "allValue": ".+",
                    "multi": True,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "sort": 1,
                    "skipUrlSync": False,
                },
            ]
        },
        "panels": lay.panels,
    }


def render() -> str:
    """The dashboard as the committed JSON text."""
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
