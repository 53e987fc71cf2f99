"""/metrics under gunicorn with two workers: every scrape counts what every worker did."""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = pytest.mark.slow
FRESH = {"Connection": "close"}  # a new connection each time: both workers answer


def scrape(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=10, headers=FRESH).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def total(sample: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in sample.items() if k.startswith(prefix))


def test_every_scrape_sees_every_workers_counts_and_the_last_reload(tmp_path):
    with webhook_receiver() as hook:
        config = {
            "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "0s"},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config, workers=2) as proc:
            for i in range(30):
                assert (
                    requests.post(
                        f"{proc.url}/api/v2/alerts",
                        headers={**proc.auth, **FRESH},
                        json=[{"labels": {"alertname": "M", "n": str(i)}}],
                        timeout=10,
                    ).status_code
                    == 200
                )
            assert (
                requests.post(
                    f"{proc.url}/api/v2/alerts",
                    headers={**proc.auth, **FRESH},
                    data="[",
                    timeout=10,
                ).status_code
                == 400
            )
            scrapes = [scrape(proc.url) for _ in range(12)]
            received = [total(s, "stacksense_router_alerts_received_total{") for s in scrapes]
            assert received == [30.0] * 12
            for s in scrapes:
                assert (
                    s.get('stacksense_http_requests_total{code="200",handler="/api/v2/alerts"}')
                    == 30.0
                )
                assert (
                    s.get('stacksense_http_requests_total{code="400",handler="/api/v2/alerts"}')
                    == 1.0
                )
                assert s["stacksense_router_config_last_reload_successful"] == 1.0

            written = yaml.safe_load(proc.config_path.read_text())
            written["route"]["recever"] = "typo"
            proc.config_path.write_text(yaml.safe_dump(written))
            assert (
                requests.post(
                    f"{proc.url}/-/reload", headers={**proc.auth, **FRESH}, timeout=10
                ).status_code
                >= 400
            )
            after = [scrape(proc.url) for _ in range(12)]
            assert [s["stacksense_router_config_last_reload_successful"] for s in after] == [
                0.0
            ] * 12
            # Sent notifications are counted by the leader, seen from either worker.
            wait_for(
                lambda: all(
                    total(scrape(proc.url), "stacksense_router_notifications_sent_total{") >= 1
                    for _ in range(4)
                ),
                timeout=20,
                what="sent counter",
            )
