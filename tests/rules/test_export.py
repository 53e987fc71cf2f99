"""Exported Prometheus rules: promtool accepts them and its unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from rules import export
from rules.cli import main
from rules.conditions import default_conditions, parse_conditions
from rules.config import EngineConfig
from tests.peers.prometheus import PROMTOOL

SHIPPED = Path(__file__).resolve().parents[2] / "rules" / "prometheus"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd)


def test_shipped_files_are_what_the_exporter_writes(tmp_path, capsys):
    assert main(["export-prometheus-rules", "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    for name in (export.RULES_FILE, export.MANIFEST_FILE):
        assert (tmp_path / name).read_text() == (SHIPPED / name).read_text(), (
            f"rules/prometheus/{name} is stale: run "
            "`stacksense-rules export-prometheus-rules --out rules/prometheus`"
        )


def test_promtool_checks_and_unit_tests_pass(tmp_path):
    for name in (export.RULES_FILE, "stacksense.rules.test.yml"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    check = promtool("check", "rules", export.RULES_FILE, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 16 rules found" in check.stdout
    test = promtool("test", "rules", "stacksense.rules.test.yml", cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


def test_prometheus_rule_manifest_carries_the_same_groups(tmp_path):
    manifest = yaml.safe_load((SHIPPED / export.MANIFEST_FILE).read_text())
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "rules"
    rules = yaml.safe_load((SHIPPED / export.RULES_FILE).read_text())
    assert manifest["spec"] == rules
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(manifest["spec"]))
    assert promtool("check", "rules", str(tmp_path / "spec.yml")).returncode == 0


def test_user_conditions_and_thresholds_export(tmp_path):
    conds = parse_conditions(
        {
            "conditions": [
                {
                    "alert": "LoadHigh",
                    "expr": "node_load1 / on (server) count by (server) "
                    '(node_cpu_seconds_total{mode="idle"})',
                    "op": ">",
                    "threshold": 2,
                    "for": "90s",
                    "severity": "critical",
                    "labels": {"team": "ops"},
                    "annotations": {"summary": "{server}: load {value} > {threshold} {{x}}"},
                }
            ]
        },
        "t",
    )
    config = EngineConfig(
        offline_after_seconds=90,
        grace_offline_after_seconds=900,
        health_yellow_at=0.6,
        health_red_at=0.9,
        exporter_job="ssx",
    )
    text = export.rules_file(config, conds)
    (tmp_path / "r.yml").write_text(text)
    result = promtool("check", "rules", str(tmp_path / "r.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(text)["groups"]}
    [rule] = groups["stacksense-conditions"]
    # Written the way Prometheus writes durations (stacksense_common.duration.format).
    assert rule["for"] == "1m30s" and rule["labels"] == {"team": "ops", "severity": "critical"}
    assert rule["annotations"]["summary"] == (
        '{{ $labels.server }}: load {{ $value | printf "%.4g" }} > 2 {x}'
    )
    threshold = next(
        r
        for r in groups["stacksense-status"]
        if r.get("record") == "stacksense:server_offline_threshold_seconds"
    )
    assert threshold["expr"] == "90 + 810 * stacksense:monitoring_grace"
    assert 'up{job="ssx"}' in next(
        r["expr"]
        for r in groups["stacksense-status"]
        if r.get("record") == "stacksense:monitoring_grace"
    )
    assert "< bool 0.6" in groups["stacksense-health"][2]["expr"]


def test_go_template_translation():
    assert export.go_template("{value_percent} of {mountpoint}", 0.9) == (
        "{{ $value | humanizePercentage }} of {{ $labels.mountpoint }}"
    )
    assert export.go_template("{threshold_percent}", 0.85) == "85%"
    # A literal "{{" (written "{{{{") must not open a Go template action.
    assert export.go_template("a {{{{b}}}}", None) == 'a {{ "{{" }}b{{ "}}" }}'
    assert len(default_conditions()) == 5
