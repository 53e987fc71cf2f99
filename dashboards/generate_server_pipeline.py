"""Generate stacksense-server.json and stacksense-pipeline.json (Grafana dashboards).

The server dashboard: one server's status and health over time, anomalies and offline
periods as annotations, resources, probe failures; templated by server. The pipeline
dashboard: whether monitoring itself works (probes by failure reason, rule-engine cycles,
notifications sent / failed / given up, outbox depth).

Run `python3 dashboards/generate_server_pipeline.py` after editing; a test
(tests/console/test_grafana_dashboards.py) checks that the committed JSON is what this
writes and runs every query against a real Prometheus. Panel helpers come from
generate_overview.py, so all StackSense dashboards look and validate alike.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("generate_overview", HERE / "generate_overview.py")
assert _spec is not None and _spec.loader is not None
overview = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(overview)
DS, Layout, panel, target = overview.DS, overview.Layout, overview.panel, overview.target

SERVER = 'server=~"$server"'
PROBE = f'job="stacksense-probe", {SERVER}'
STATES = ("online", "warning", "offline", "suspended", "pending", "unknown")
COLORS = {
    "online": "green",
    "warning": "yellow",
    "offline": "red",
    "suspended": "gray",
    "pending": "blue",
    "unknown": "purple",
}
STATUS_CODE = (
    "max by (server) ("
    + " or ".join(
        f'{i} * (stacksense_server_status{{{SERVER}, status="{s}"}} == 1)'
        for i, s in enumerate(STATES)
    )
    + ")"
)
STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            str(i): {"text": s, "color": COLORS[s], "index": i} for i, s in enumerate(STATES)
        },
    }
]
RATIO: dict[str, Any] = {
    "unit": "percentunit",
    "minimum": 0,
    "maximum": 1,
    "thresholds": [(None, "green"), (0.7, "yellow"), (0.85, "red")],
}
DATASOURCE_VAR = {
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
}
BUILTIN_ANNOTATIONS = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def annotation(name: str, expr: str, title: str, color: str) -> dict[str, Any]:
    """A Prometheus annotation: one region per series while `expr` returns it."""
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "tagKeys": "server",
        "textFormat": "",
        "useValueForTime": False,
    }


def dashboard(
    title: str,
    uid: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "title": title,
        "uid": uid,
        "description": description,
        "tags": ["stacksense"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 41,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": [BUILTIN_ANNOTATIONS, *annotations]},
        "links": [
            {
                "title": "Fleet overview",
                "type": "link",
                "icon": "dashboard",
                "url": "/d/stacksense-overview",
                "targetBlank": False,
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "tags": [],
                "tooltip": "every server",
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }


def server_board() -> dict[str, Any]:
    lay = Layout()
    lay.row("Status and health")
    lay.add(
        panel(
            "state-timeline",
            "Status",
            "pending / online / warning / offline / "
            "suspended / unknown, as the rule engine decided it.",
            [target(STATUS_CODE, "{{server}}")],
            mappings=STATUS_MAPPINGS,
            thresholds=[(None, "green")],
            options={"showValue": "never", "mergeValues": True},
        ),
        24,
        5,
    )
    lay.add(
        panel(
            "timeseries",
            "Health score",
            "0-100 (100 = every resource idle).",
            [target(f"max by (server) (stacksense_server_health_score{{{SERVER}}})", "{{server}}")],
            minimum=0,
            maximum=100,
            thresholds=[(None, "red"), (50, "yellow"), (80, "green")],
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Anomaly scores",
            "0-1 per metric; annotated while active.",
            [
                target(
                    f"max by (server, metric) (stacksense_anomaly_score{{{SERVER}}})",
                    "{{server}} {{metric}}",
                )
            ],
            minimum=0,
            maximum=1,
        ),
        12,
    )
    lay.row("Resources")
    for title, metric in (
        ("CPU", "stacksense_cpu_usage_ratio"),
        ("Memory", "stacksense_memory_usage_ratio"),
        ("Disk (fullest filesystem)", "stacksense_filesystem_usage_ratio"),
    ):
        lay.add(
            panel(
                "timeseries",
                title,
                f"max of {metric} per server.",
                [target(f"max by (server) ({metric}{{{PROBE}}})", "{{server}}")],
                **RATIO,
            ),
            8,
        )
    lay.add(
        panel(
            "timeseries",
            "Network",
            "Bytes per second received and sent (not lo).",
            [
                target(
                    f"sum by (server) (rate(node_network_receive_bytes_total{{{PROBE}, "
                    'device!="lo"}[$__rate_interval]))',
                    "{{server}} in",
                ),
                target(
                    f"sum by (server) (rate(node_network_transmit_bytes_total{{{PROBE}, "
                    'device!="lo"}[$__rate_interval]))',
                    "{{server}} out",
                    ref="B",
                ),
            ],
            unit="Bps",
            minimum=0,
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Load (1 min)",
            "node_load1 per server.",
            [target(f"max by (server) (node_load1{{{PROBE}}})", "{{server}}")],
            minimum=0,
        ),
        12,
    )
    lay.row("Probes")
    lay.add(
        panel(
            "timeseries",
            "Probe failures by reason",
            "1 while the latest probe failed "
            "for this reason (refused, timeout, auth, host_key, ...).",
            [
                target(
                    f"max by (server, reason) (stacksense_probe_failure{{{SERVER}}}) == 1",
                    "{{server}} {{reason}}",
                )
            ],
            minimum=0,
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Heartbeat age",
            "Seconds since the last successful contact.",
            [
                target(
                    f"max by (server) (stacksense_heartbeat_age_seconds{{{SERVER}}})", "{{server}}"
                )
            ],
            unit="s",
            minimum=0,
        ),
        12,
    )
    server_var = {
        "name": "server",
        "label": "Server",
        "type": "query",
        "datasource": DS,
        "query": {
            "query": "label_values(stacksense_server_status, server)",
            "refId": "StandardVariableQuery",
        },
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "skipUrlSync": False,
    }
    notes = [
        annotation(
            "Offline",
            f'max by (server) (stacksense_server_status{{{SERVER}, status="offline"}}) == 1',
            "{{server}} offline",
            "red",
        ),
        annotation(
            "Anomalies",
            f"max by (server, metric) (stacksense_anomaly_active{{{SERVER}}}) == 1",
            "anomaly: {{metric}}",
            "orange",
        ),
        annotation(
            "Conditions firing",
            f"max by (server, alertname) (stacksense_condition_firing{{{SERVER}}}) > 0",
            "{{alertname}}",
            "yellow",
        ),
    ]
    return dashboard(
        "StackSense server",
        "stacksense-server",
        "One server over time: status, health, anomalies, resources, probes.",
        [DATASOURCE_VAR, server_var],
        lay.panels,
        notes,
    )


def pipeline_board() -> dict[str, Any]:
    lay = Layout()
    lay.row("Probes (exporter)")
    lay.add(
        panel(
            "timeseries",
            "Servers failing, by reason",
            "How many servers' latest probe failed, per reason.",
            [target("count by (reason) (stacksense_probe_failure == 1)", "{{reason}}")],
            minimum=0,
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Probe duration",
            "Slowest probe, and the median server.",
            [
                target("max(stacksense_probe_duration_seconds)", "slowest"),
                target("quantile(0.5, stacksense_probe_duration_seconds)", "median", ref="B"),
            ],
            unit="s",
            minimum=0,
        ),
        12,
    )
    lay.row("Rule engine")
    lay.add(
        panel(
            "timeseries",
            "Cycle time",
            "Wall time of the last cycle, beside the configured interval.",
            [
                target("max(stacksense_rules_cycle_duration_seconds)", "cycle"),
                target("max(stacksense_rules_interval_seconds)", "interval", ref="B"),
            ],
            unit="s",
            minimum=0,
        ),
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Since the last good cycle",
            "Seconds; a stalled engine climbs.",
            [
                target(
                    "time() - max(stacksense_rules_last_successful_cycle_timestamp_seconds)", "age"
                )
            ],
            unit="s",
            minimum=0,
        ),
        8,
    )
    lay.add(
        panel(
            "state-timeline",
            "Pipeline",
            "1 while the exporter or Prometheus cannot see (every status unknown).",
            [target("max(stacksense_rules_pipeline_down)", "pipeline down")],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "ok", "color": "green", "index": 0},
                        "1": {"text": "down", "color": "red", "index": 1},
                    },
                }
            ],
            thresholds=[(None, "green")],
            options={"showValue": "never"},
        ),
        8,
    )
    lay.row("Notifications (router)")
    lay.add(
        panel(
            "timeseries",
            "Notifications",
            "Sent, failed attempts and given up, per second, by receiver.",
            [
                target(
                    "sum by (receiver) (rate(stacksense_router_notifications_sent_total"
                    "[$__rate_interval]))",
                    "sent {{receiver}}",
                ),
                target(
                    "sum by (receiver) (rate(stacksense_router_notifications_failed_"
                    "total[$__rate_interval]))",
                    "failed {{receiver}}",
                    ref="B",
                ),
                target(
                    "sum by (receiver) (rate(stacksense_router_notifications_given_up_"
                    "total[$__rate_interval]))",
                    "given up {{receiver}}",
                    ref="C",
                ),
            ],
            unit="reqps",
            minimum=0,
        ),
        12,
    )
    lay.add(
        panel(
            "timeseries",
            "Outbox depth",
            "Notifications not yet delivered.",
            [target("max(stacksense_router_outbox_depth)", "outbox")],
            minimum=0,
        ),
        12,
    )
    return dashboard(
        "StackSense pipeline",
        "stacksense-pipeline",
        "Is monitoring itself working: probes, rule-engine cycles, notifications.",
        [DATASOURCE_VAR],
        lay.panels,
        [],
    )


BOARDS = {"stacksense-server.json": server_board, "stacksense-pipeline.json": pipeline_board}


def render(name: str) -> str:
    return json.dumps(BOARDS[name](), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    for name in BOARDS:
        (HERE / name).write_text(render(name))
        print(f"wrote {HERE / name}")
