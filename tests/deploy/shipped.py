"""The shipped deployment files the deploy tests read: prometheus.yml and the overview dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "prometheus.yml"
DASHBOARDS = REPO / "dashboards"
OVERVIEW = DASHBOARDS / "stacksense-overview.json"


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = dict(yaml.safe_load(CONFIG.read_text()))
    return config


def job(config: dict[str, Any], name: str) -> dict[str, Any]:
    jobs: dict[str, dict[str, Any]] = {j["job_name"]: j for j in config["scrape_configs"]}
    assert name in jobs, f"job {name} missing; have {sorted(jobs)}"
    return jobs[name]


def overview() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(OVERVIEW.read_text())
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(board) for t in p["targets"]]
