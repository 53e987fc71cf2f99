"""Condition rules: format, defaults, templates, and the for-duration state machine."""

from __future__ import annotations

import json

import pytest

from rules.conditions import (
    ConditionTracker,
    default_conditions,
    load_conditions,
    parse_conditions,
)
from rules.validate import ConfigError


def one(**rule):
    return parse_conditions(
        {"conditions": [{"alert": "A", "severity": "warning", **rule}]}, "t.yml"
    )[0]


def test_shipped_defaults():
    by_name = {c.alert: c for c in default_conditions()}
    assert by_name["HighCpuUsage"].expr == "stacksense_cpu_usage_ratio > 0.8"
    assert by_name["HighCpuUsage"].for_seconds == 300
    assert by_name["HighMemoryUsage"].expr == "stacksense_memory_usage_ratio > 0.85"
    assert by_name["DiskAlmostFull"].expr == "stacksense_filesystem_usage_ratio > 0.9"
    assert by_name["Watchdog"].expr == "vector(1)" and by_name["Watchdog"].severity == "none"


def test_metric_and_expr_forms():
    assert one(metric="m", op=">=", threshold=2).expr == "m >= 2"
    assert one(expr="rate(x[5m])", op="<", threshold=0.5).expr == "(rate(x[5m])) < 0.5"
    assert one(expr="up == 0").expr == "up == 0"
    assert one(expr="up == 0", **{"for": "1h30m"}).for_seconds == 5400


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"metric": "m"}, "t.yml: conditions[0]: a metric condition needs op and threshold"),
        ({"metric": "m", "expr": "x"}, "give exactly one of metric or expr"),
        ({"metric": "m", "op": "=>", "threshold": 1}, "conditions[0].op: must be one of"),
        ({"expr": "x", "op": ">"}, "op and threshold go together"),
        (
            {"expr": "x", "threshold": "high", "op": ">"},
            "conditions[0].threshold: expected a number",
        ),
        ({"expr": "x", "for": "5 min"}, "conditions[0].for: expected a duration"),
        ({"expr": "x", "severity": "urgent"}, "conditions[0].severity: must be one of"),
        ({"expr": "x", "labels": {"severity": "x"}}, "conditions[0].labels.severity: reserved"),
        (
            {"expr": "x", "annotations": {"summary": "{value:.2f}"}},
            "conditions[0].annotations.summary: placeholder {value:.2f} must be a plain name",
        ),
        ({"expr": "x", "annotations": {"summary": "{labels.server}"}}, "must be a plain name"),
        ({"expr": "x", "annotations": {"summary": "oops {"}}, "invalid template"),
        ({"expr": "x", "thresold": 3}, "conditions[0].thresold: unknown key"),
    ],
)
def test_errors_name_the_rule_and_key(rule, message):
    with pytest.raises(ConfigError) as err:
        one(**rule)
    assert message in str(err.value)


def test_duplicate_names_rejected():
    with pytest.raises(ConfigError, match=r"conditions\[1\].alert: duplicate alert name 'A'"):
        parse_conditions({"conditions": [{"alert": "A", "severity": "info", "expr": "x"}] * 2}, "f")


def test_templates_render_labels_values_and_missing_labels():
    c = one(
        metric="m",
        op=">",
        threshold=0.9,
        annotations={
            "summary": "{mountpoint} on {server} at {value_percent} > {threshold_percent} ({value})",  # noqa: E501
            "missing": "{nope} {{literal}}",
        },
    )
    out = c.render_annotations({"server": "db1", "mountpoint": "/data"}, 0.9512)
    assert out["summary"] == "/data on db1 at 95.12% > 90% (0.9512)"
    assert out["missing"] == "<no value> {literal}"


def test_user_file_overrides_a_default_by_name(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(
        "conditions:\n  - {alert: HighCpuUsage, metric: stacksense_cpu_usage_ratio,"
        " op: '>', threshold: 0.95, severity: critical}\n"
        "  - {alert: ProbeFailing, expr: stacksense_probe_success == 0, "
        "for: 2m, severity: warning}\n"
    )
    rules = {c.alert: c for c in load_conditions(path)}
    assert rules["HighCpuUsage"].threshold == 0.95 and "Watchdog" in rules
    assert rules["ProbeFailing"].for_seconds == 120
    assert [c.alert for c in load_conditions(path, include_defaults=False)] == [
        "HighCpuUsage",
        "ProbeFailing",
    ]


def test_for_duration_state_machine_and_persistence():
    c = one(metric="m", op=">", threshold=1, labels={"team": "db"}, **{"for": "60s"})
    tracker = ConditionTracker()
    series = ({"__name__": "m", "server": "a"}, 2.0)
    assert tracker.update(c, [series], 0) == []
    assert not tracker.firing()  # pending
    tracker.update(c, [series], 59)
    assert not tracker.firing()
    tracker.update(c, [series], 60)
    [firing] = tracker.firing()
    assert firing.labels == {"server": "a", "team": "db", "alertname": "A", "severity": "warning"}
    assert firing.fired_at == 60 and firing.active_since == 0
    restored = ConditionTracker.from_state(json.loads(json.dumps(tracker.get_state())))
    assert restored.firing()[0].fired_at == 60
    [resolved] = restored.update(c, [], 75)
    assert resolved.labels["server"] == "a" and not restored.active
    # A pending series that disappears resolves nothing; its timer restarts.
    restored.update(c, [series], 100)
    assert restored.update(c, [], 115) == []
    restored.update(c, [series], 130)
    restored.update(c, [series], 180)
    assert not restored.firing()
