"""Export conditions, status and health as Prometheus rule files (and a PrometheusRule).

For users who prefer Prometheus to evaluate: the conditions become alerting
rules verbatim (annotation templates translated to Go templates), status
becomes a `ServerOffline` alerting rule, health becomes recording rules.

A server of the inventory never reached is `ServerUnreachable` (warning) after
`status.pending_timeout`, never `ServerOffline`; alerts name the probe's failure
reason. What cannot be expressed in PromQL is approximated and documented:
- grace after a monitoring outage: 600 s instead of 60 s while Prometheus
  started less than 15 min ago, or while an exporter replica failed at least
  a third of its scrapes in the last 15 min (≈ 5 minutes down); the engine's
  own downtime has no Prometheus equivalent;
- anomalies (a streaming detector with state) are not exported;
- the `warning` status (it depends on the conditions firing) is not exported.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import yaml

from rules.conditions import Condition
from rules.config import EngineConfig
from rules.promapi import escape_label_value
from rules.validate import format_duration

RULES_FILE = "stacksense.rules.yml"
MANIFEST_FILE = "stacksense-prometheusrule.yaml"
_BRACES = re.compile(r"(\{\{|\}\})")


def go_template(template: str, threshold: float | None) -> str:
    """Translate a condition annotation template into Prometheus' Go template syntax."""
    out: list[str] = []
    text = ""  # the parser splits literals at escaped braces: join them before escaping
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        text += literal
        if name is None:
            continue
        out.append(_BRACES.sub(lambda m: '{{ "' + m.group(1) + '" }}', text))
        text = ""
        if name == "value":
            out.append('{{ $value | printf "%.4g" }}')
        elif name == "value_percent":
            out.append("{{ $value | humanizePercentage }}")
        elif name == "threshold":
            out.append("<no value>" if threshold is None else f"{threshold:g}")
        elif name == "threshold_percent":
            out.append("<no value>" if threshold is None else f"{threshold * 100:g}%")
        else:
            out.append(f"{{{{ $labels.{name} }}}}")
    out.append(_BRACES.sub(lambda m: '{{ "' + m.group(1) + '" }}', text))
    return "".join(out)


def condition_rules(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    """One alerting rule per condition."""
    rules = []
    for c in conditions:
        rule: dict[str, Any] = {"alert": c.alert, "expr": c.expr}
        if c.for_seconds:
            rule["for"] = format_duration(c.for_seconds)
        rule["labels"] = {**c.labels, "severity": c.severity}
        if c.annotations:
            rule["annotations"] = {k: go_template(t, c.threshold) for k, t in c.annotations.items()}
        rules.append(rule)
    return rules


def status_rules(config: EngineConfig) -> list[dict[str, Any]]:
    """Heartbeat age, the grace flag, the offline threshold and the ServerOffline alert."""
    window = format_duration(config.grace_offline_after_seconds + 60)
    exporter = escape_label_value(config.exporter_job)
    prom = escape_label_value(config.prometheus_job)
    recent = format_duration(config.grace_period_seconds + config.outage_threshold_seconds)
    down_fraction = round(
        config.outage_threshold_seconds
        / (config.grace_period_seconds + config.outage_threshold_seconds),
        3,
    )
    extra = config.grace_offline_after_seconds - config.offline_after_seconds
    return [
        {
            "record": "stacksense:server_last_heartbeat_timestamp_seconds",
            "expr": "max by (server) (max_over_time("
            f"stacksense_last_heartbeat_timestamp_seconds[{window}]))",
        },
        {
            "record": "stacksense:server_heartbeat_age_seconds",
            "expr": "time() - stacksense:server_last_heartbeat_timestamp_seconds",
        },
        {
            "record": "stacksense:monitoring_grace",
            "expr": "max(\n"
            f'  label_replace(time() - max(process_start_time_seconds{{job="{prom}"}})'
            f" < bool {config.grace_period_seconds + config.outage_threshold_seconds:g},"
            ' "sign", "prometheus_restart", "", "")\n'
            f'  or label_replace(min(avg_over_time(up{{job="{exporter}"}}[{recent}]))'
            f' < bool {1 - down_fraction:g}, "sign", "exporter_down", "", "")\n'
            '  or label_replace(vector(0), "sign", "none", "", "")\n)',
        },
        {
            "record": "stacksense:server_offline_threshold_seconds",
            "expr": f"{config.offline_after_seconds:g} + {extra:g} * stacksense:monitoring_grace",
        },
        # Reached (a heartbeat in the window), stale, and in the inventory, not suspended;
        # a server never reached is pending, never offline (docs/rules-engine.md).
        {
            "alert": "ServerOffline",
            "expr": "stacksense:server_heartbeat_age_seconds\n"
            "  > on () group_left () stacksense:server_offline_threshold_seconds\n"
            "and on (server) max by (server) (stacksense_server_suspended == 0)",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "{{ $labels.server }} is offline (" + _REASON + ")"},
        },
        {
            "alert": "ServerUnreachable",
            "expr": "max by (server) (stacksense_server_suspended == 0)\n"
            "unless on (server) stacksense:server_last_heartbeat_timestamp_seconds",
            "for": format_duration(config.pending_timeout_seconds),
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $labels.server }} was never reached (" + _REASON + ")"},
        },
    ]


# The probe's failure reason, looked up when the alert is rendered.
_REASON = (
    "{{ with query (printf \"max by (reason) (stacksense_probe_failure{server='%s'}"
    ' == 1)" $labels.server) }}{{ . | first | label "reason" }}'
    "{{ else }}no heartbeat{{ end }}"
)


def health_rules(config: EngineConfig) -> list[dict[str, Any]]:
    """The worst usage ratio, the 0-100 score and the colour state set per server."""
    ratio = "stacksense:server_max_usage_ratio"
    y, r = f"{config.health_yellow_at:g}", f"{config.health_red_at:g}"
    return [
        {
            "record": ratio,
            "expr": 'max by (server) ({__name__=~"stacksense_(cpu|memory|swap|filesystem)'
            '_usage_ratio"})',
        },
        {"record": "stacksense:server_health_score", "expr": f"100 * (1 - clamp({ratio}, 0, 1))"},
        {
            "record": "stacksense:server_health",
            "labels": {"color": "green"},
            "expr": f"{ratio} < bool {y}",
        },
        {
            "record": "stacksense:server_health",
            "labels": {"color": "yellow"},
            "expr": f"({ratio} >= bool {y}) * ({ratio} <= bool {r})",
        },
        {
            "record": "stacksense:server_health",
            "labels": {"color": "red"},
            "expr": f"{ratio} > bool {r}",
        },
    ]


def rule_groups(config: EngineConfig, conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    """The three rule groups."""
    interval = format_duration(config.interval_seconds)
    return [
        {"name": "stacksense-status", "interval": interval, "rules": status_rules(config)},
        {"name": "stacksense-health", "interval": interval, "rules": health_rules(config)},
        {
            "name": "stacksense-conditions",
            "interval": interval,
            "rules": condition_rules(conditions),
        },
    ]


def rules_file(config: EngineConfig, conditions: Sequence[Condition]) -> str:
    """A Prometheus rule file (`rule_files:`) as YAML text."""
    header = (
        "# Generated by `stacksense-rules export-prometheus-rules`; edit the conditions\n"
        "# file and regenerate rather than editing this file.\n"
    )
    return header + _dump({"groups": rule_groups(config, conditions)})


def prometheus_rule_manifest(
    config: EngineConfig,
    conditions: Sequence[Condition],
    *,
    name: str = "stacksense-rules",
    namespace: str | None = None,
) -> str:
    """The same groups as a prometheus-operator PrometheusRule manifest."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/name": "stacksense", "app.kubernetes.io/component": "rules"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return _dump(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata,
            "spec": {"groups": rule_groups(config, conditions)},
        }
    )


def _dump(doc: Any) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=1000)
