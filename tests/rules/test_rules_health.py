"""Prometheus rules on the rule engine's own health: promtool accepts them, their unit
tests pass, and the metrics they read are the ones the engine publishes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from rules.config import EngineConfig
from rules.engine import Engine
from rules.metrics import EngineCollector
from tests.peers.prometheus import PROMTOOL
from tests.peers.util import free_port

REPO = Path(__file__).resolve().parents[2]
# The pipeline's self-checks, shipped to every Prometheus (make run, Compose, Helm).
RULES = REPO / "docker" / "prometheus" / "rules.d" / "stacksense-pipeline.yml"
UNIT_TESTS = REPO / "tests" / "deploy" / "rules" / "rules_health_test.yml"


def test_promtool_checks_and_unit_tests_pass(tmp_path):
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check
    unit = tmp_path / "rules_health_test.yml"
    unit.write_text(UNIT_TESTS.read_text().replace("RULES_FILE", str(RULES)))
    test = subprocess.run([PROMTOOL, "test", "rules", str(unit)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def test_the_rules_read_metrics_the_engine_publishes(tmp_path):
    # Prometheus unreachable: the engine's metrics still exist after a failed cycle.
    config = EngineConfig(
        prometheus_url=f"http://127.0.0.1:{free_port()}",
        prometheus_retries=0,
        prometheus_timeout_seconds=1.0,
        state_file=tmp_path / "s.json",
    )
    engine = Engine(config, [])
    engine.run_cycle()
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    published = set(re.findall(r"^(stacksense_\w+)", generate_latest(registry).decode(), re.M))
    groups = yaml.safe_load(RULES.read_text())["groups"]
    used = {
        m
        for g in groups
        for r in g["rules"]
        for m in re.findall(r"\b(stacksense_rules_\w+)", r["expr"])
    }
    assert used and used <= published, used - published
    assert (
        registry.get_sample_value("stacksense_rules_last_successful_cycle_timestamp_seconds") == 0.0
    )
    assert registry.get_sample_value("stacksense_rules_interval_seconds") == 15.0
