"""prometheus.yml: valid for promtool, and a real Prometheus using it scrapes what we expect."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.deploy.fake_stack import FakeStack, fake_stack
from tests.deploy.shipped import CONFIG, REPO, job, load_config
from tests.peers.prometheus import PROMTOOL, Prometheus, prometheus
from tests.peers.util import wait_for

RULES_DIR = REPO / "docker" / "prometheus" / "rules.d"
TOKEN = "router-token-for-tests"


def test_promtool_accepts_config_and_rules() -> None:
    out = subprocess.run([PROMTOOL, "check", "config", str(CONFIG)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    rule_files = sorted(RULES_DIR.glob("*.yml"))
    assert rule_files
    out = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, rule_files)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_probe_job_follows_the_contract() -> None:
    config = load_config()
    probe = job(config, "stacksense-probe")
    assert probe["metrics_path"] == "/probe"
    assert probe["params"] == {"module": ["default"]}
    assert probe["http_sd_configs"] == [
        {"url": "http://exporter:9816/sd", "refresh_interval": "30s"}
    ]
    interval = int(probe["scrape_interval"].rstrip("s"))
    timeout = int(probe["scrape_timeout"].rstrip("s"))
    assert timeout < interval
    for name, target in [
        ("stacksense-exporter", "exporter:9816"),
        ("stacksense-rules", "rules:9817"),
        ("stacksense-router", "router:9818"),
    ]:
        assert job(config, name)["static_configs"] == [{"targets": [target]}]
    (am,) = config["alerting"]["alertmanagers"]
    assert am["api_version"] == "v2"
    assert am["static_configs"] == [{"targets": ["router:9818"]}]
    assert am["authorization"]["credentials_file"].startswith("/etc/prometheus/secrets/")


def localize(config: dict[str, Any], fake: FakeStack, tmp: Path) -> dict[str, Any]:
    """Point the compose host names at the fake and shorten intervals, leaving the rest as is."""
    text = yaml.safe_dump(config)
    for host in ("exporter:9816", "rules:9817", "router:9818"):
        text = text.replace(host, f"127.0.0.1:{fake.port}")
    local: dict[str, Any] = yaml.safe_load(text)
    local["global"]["scrape_interval"] = "1s"
    local["global"]["evaluation_interval"] = "1s"
    probe = job(local, "stacksense-probe")
    probe.update(scrape_interval="1s", scrape_timeout="1s")
    probe["http_sd_configs"][0]["refresh_interval"] = "1s"
    token = tmp / "router-token"
    token.write_text(TOKEN + "\n")
    local["alerting"]["alertmanagers"][0]["authorization"]["credentials_file"] = str(token)
    # An always-firing rule so the alerting path can be observed within seconds.
    rules = tmp / "always.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "t",
                        "rules": [
                            {
                                "alert": "DeployTestAlwaysFiring",
                                "expr": "vector(1)",
                                "labels": {"severity": "none"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    local["rule_files"] = [str(rules)]
    return local


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, FakeStack]]:
    tmp = tmp_path_factory.mktemp("prom-compose")
    # The first alert can be dropped before the router is discovered; resend it quickly.
    with (
        fake_stack(["web1", "db-2"]) as fake,
        prometheus(
            tmp, localize(load_config(), fake, tmp), extra_args=["--rules.alert.resend-delay=1s"]
        ) as prom,
    ):
        yield prom, fake


def test_probes_are_relabeled_per_server(running: tuple[Prometheus, FakeStack]) -> None:
    prom, fake = running
    result = prom.wait_for_series('stacksense_probe_success{job="stacksense-probe"}', timeout=20)
    wait_for(
        lambda: len(prom.query('stacksense_probe_success{job="stacksense-probe"}')) == 2,
        timeout=20,
        what="both servers scraped",
    )
    result = prom.query('stacksense_probe_success{job="stacksense-probe"}')
    labels = sorted((r["metric"]["instance"], r["metric"]["server"]) for r in result)
    assert labels == [("db-2", "db-2"), ("web1", "web1")]
    probes = fake.requests_to("/probe")
    targets = {p.query["target"][0] for p in probes}
    assert targets == {"web1", "db-2"}
    assert all(p.query["module"] == ["default"] for p in probes)
    # The exporter derives its SSH deadline from this header.
    assert all("x-prometheus-scrape-timeout-seconds" in p.headers for p in probes)


def test_service_jobs_are_scraped(running: tuple[Prometheus, FakeStack]) -> None:
    prom, _ = running
    result = prom.wait_for_series('up{job=~"stacksense-(exporter|rules|router)"} == 1', timeout=20)
    wait_for(
        lambda: len(prom.query('up{job=~"stacksense-(exporter|rules|router)"} == 1')) == 3,
        timeout=20,
        what="three service jobs up",
    )
    assert result


def test_alerts_reach_the_router_with_its_token(running: tuple[Prometheus, FakeStack]) -> None:
    prom, fake = running
    posts = wait_for(
        lambda: fake.requests_to("/api/v2/alerts"), timeout=30, what="alerts posted to the router"
    )
    assert posts[0].headers["authorization"] == f"Bearer {TOKEN}"
    alerts = json.loads(posts[0].body)
    assert any(a["labels"]["alertname"] == "DeployTestAlwaysFiring" for a in alerts)
    active = requests.get(f"{prom.url}/api/v1/alertmanagers", timeout=5).json()
    assert active["data"]["activeAlertmanagers"][0]["url"].endswith("/api/v2/alerts")
