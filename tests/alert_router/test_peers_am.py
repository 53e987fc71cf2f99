"""Real peers: amtool against the router, a real Alertmanager's webhook, a real Prometheus."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from alert_router.fingerprint import fingerprint
from tests.peers.alertmanager import AMTOOL, alertmanager
from tests.peers.prometheus import prometheus
from tests.peers.router import RouterProcess, router
from tests.peers.util import wait_for
from tests.peers.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def live_router(
    tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[RouterProcess]:
    config = {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "server"],
            "group_wait": "1s",
            "group_interval": "2s",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": receiver.url}]}],
    }
    with router(tmp_path_factory.mktemp("router"), config) as proc:
        yield proc


def amtool(proc: RouterProcess, tmp: Path, *args: str) -> str:
    http_config = tmp / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  credentials: {proc.token}\n")
    result = subprocess.run(
        [AMTOOL, f"--alertmanager.url={proc.url}", f"--http.config.file={http_config}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, f"amtool {args}: {result.stderr}"
    return result.stdout


def test_amtool_silence_add_query_expire_and_alert_query(live_router, tmp_path):
    post = requests.post(
        f"{live_router.url}/api/v2/alerts",
        headers=live_router.auth,
        json=[{"labels": {"alertname": "AmtoolCheck", "server": "web-9", "severity": "warning"}}],
    )
    assert post.status_code == 200
    rows = wait_for(
        lambda: json.loads(
            amtool(live_router, tmp_path, "alert", "query", "alertname=AmtoolCheck", "-o", "json")
        ),
        what="amtool alert query",
    )
    assert rows[0]["labels"]["server"] == "web-9"
    assert rows[0]["fingerprint"] == fingerprint(rows[0]["labels"])

    silence_id = amtool(
        live_router,
        tmp_path,
        "silence",
        "add",
        "server=web-9",
        "alertname=~Amtool.*",
        "--duration=1h",
        "--author=alice",
        "--comment=maintenance window",
    ).strip()
    assert len(silence_id) == 36
    listed = json.loads(amtool(live_router, tmp_path, "silence", "query", "-o", "json"))
    mine = [s for s in listed if s["id"] == silence_id]
    assert mine and mine[0]["createdBy"] == "alice" and mine[0]["status"]["state"] == "active"
    assert {(m["name"], m["value"], m["isRegex"]) for m in mine[0]["matchers"]} == {
        ("server", "web-9", False),
        ("alertname", "Amtool.*", True),
    }
    # The alert is now suppressed by the silence; amtool hides silenced alerts by default.
    silenced = json.loads(
        amtool(live_router, tmp_path, "alert", "query", "-s", "alertname=AmtoolCheck", "-o", "json")
    )
    assert silenced[0]["status"]["silencedBy"] == [silence_id]
    assert (
        json.loads(
            amtool(live_router, tmp_path, "alert", "query", "alertname=AmtoolCheck", "-o", "json")
        )
        == []
    )

    amtool(live_router, tmp_path, "silence", "expire", silence_id)
    after = json.loads(amtool(live_router, tmp_path, "silence", "query", "--expired", "-o", "json"))
    assert [s["status"]["state"] for s in after if s["id"] == silence_id] == ["expired"]


def test_amtool_without_token_is_refused(live_router, tmp_path):
    result = subprocess.run(
        [
            AMTOOL,
            f"--alertmanager.url={live_router.url}",
            "silence",
            "add",
            "a=b",
            "--comment=x",
            "--author=y",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0


def test_real_alertmanager_webhook_v4_reaches_the_router(live_router, receiver, tmp_path):
    config = {
        "route": {
            "receiver": "router",
            "group_wait": "0s",
            "group_interval": "1s",
            "group_by": ["alertname"],
        },
        "receivers": [
            {
                "name": "router",
                "webhook_configs": [
                    {
                        "url": f"{live_router.url}/api/v1/webhook/alertmanager",
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": live_router.token}},
                    }
                ],
            }
        ],
    }
    labels = {"alertname": "FromAlertmanager", "server": "db-3"}
    with alertmanager(tmp_path, config) as am:
        resp = requests.post(
            f"{am.url}/api/v2/alerts",
            timeout=10,
            json=[{"labels": labels, "annotations": {"summary": "relayed"}}],
        )
        assert resp.status_code == 200
        got = wait_for(
            lambda: [
                a for a in receiver.alerts() if a["labels"].get("alertname") == "FromAlertmanager"
            ],
            timeout=30,
            what="alert relayed AM -> router -> receiver",
        )
    assert got[0]["labels"] == labels
    assert got[0]["annotations"] == {"summary": "relayed"}
    assert got[0]["status"] == "firing"
    # Same label set, same fingerprint as Alertmanager computes.
    am_alerts = requests.get(
        f"{live_router.url}/api/v2/alerts",
        params={"filter": 'alertname="FromAlertmanager"'},
        timeout=10,
    ).json()
    assert am_alerts[0]["fingerprint"] == got[0]["fingerprint"] == fingerprint(labels)


def test_prometheus_alerting_points_at_the_router(live_router, receiver, tmp_path):
    (tmp_path / "rules.yml").write_text(
        "groups:\n- name: t\n  interval: 1s\n  rules:\n  - alert: PromFires\n"
        "    expr: vector(1)\n    labels: {server: prom-host, severity: info}\n"
        "    annotations: {summary: from prometheus}\n"
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {
                    "static_configs": [{"targets": [f"127.0.0.1:{live_router.port}"]}],
                    "api_version": "v2",
                    "authorization": {"credentials": live_router.token},
                }
            ]
        },
    }
    # Prometheus finds the router a few seconds after start; re-send every second so the
    # test does not wait for the default 1 minute resend delay.
    with prometheus(tmp_path, config, extra_args=["--rules.alert.resend-delay=1s"]):
        got = wait_for(
            lambda: [a for a in receiver.alerts() if a["labels"].get("alertname") == "PromFires"],
            timeout=40,
            interval=0.2,
            what="Prometheus alert delivered via router",
        )
    assert got[0]["labels"]["server"] == "prom-host"
    assert got[0]["annotations"]["summary"] == "from prometheus"
    assert got[0]["generatorURL"].startswith("http")
