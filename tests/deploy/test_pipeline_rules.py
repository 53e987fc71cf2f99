"""The pipeline's self-checks that every shipped Prometheus loads, unit-tested by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers.prometheus import PROMTOOL

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docker" / "prometheus" / "rules.d" / "stacksense-pipeline.yml"


def test_pipeline_rules_fire_in_time(tmp_path: Path) -> None:
    tests = (Path(__file__).parent / "rules" / "pipeline_test.yml").read_text()
    unit = tmp_path / "pipeline_test.yml"
    unit.write_text(tests.replace("RULES_FILE", str(RULES)))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_helm_ships_the_same_rules() -> None:
    helm = REPO / "helm" / "stacksense" / "files" / "stacksense-pipeline.yml"
    assert helm.read_text() == RULES.read_text()
