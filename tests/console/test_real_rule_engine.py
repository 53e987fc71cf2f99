"""Contract with the real rule engine: the console lists what `GET /api/v1/servers` of a real
RulesService reports (whatever its status lifecycle says), with figures from a real
Prometheus, and a server page renders the engine's single-server answer."""

from __future__ import annotations

import re
import time

import pytest
import requests

from alert_router.app import create_app
from alert_router.console.users import Users
from rules.config import EngineConfig
from rules.server import RulesService
from tests.console.session import PASSWORD, console_config, login
from tests.peers.openmetrics import History
from tests.peers.prometheus import backfill, prometheus
from tests.peers.util import free_port, wait_for

pytestmark = pytest.mark.slow
SERVERS = ("alpha", "beta")


def history(now: float) -> str:
    h = History()
    start = now - 1800
    exporter = {"job": "stacksense-exporter", "instance": "exp:9816"}
    h.fill("up", exporter, start, now - 5, 15, lambda t: 1.0)
    for server in SERVERS:
        h.fill(
            "stacksense_server_suspended",
            {**exporter, "server": server},
            start,
            now - 5,
            15,
            lambda t: 0.0,
        )
        h.fill(
            "stacksense_last_heartbeat_timestamp_seconds",
            {**exporter, "server": server, "source": "ssh"},
            start,
            now - 5,
            15,
            lambda t: t - 2,
        )
        probe = {"job": "stacksense-probe", "instance": server, "server": server}
        h.fill("stacksense_cpu_usage_ratio", probe, start, now - 5, 15, lambda t: 0.42)
        h.fill("stacksense_memory_usage_ratio", probe, start, now - 5, 15, lambda t: 0.5)
        h.fill(
            "stacksense_filesystem_usage_ratio",
            {**probe, "mountpoint": "/"},
            start,
            now - 5,
            15,
            lambda t: 0.3,
        )
    return h.render()


def test_console_reads_the_real_rule_engine(tmp_path):
    backfill(history(time.time()), tmp_path / "prom-data")
    with prometheus(tmp_path, data_dir=tmp_path / "prom-data") as prom:
        service = RulesService(
            None,
            config=EngineConfig(
                prometheus_url=prom.url,
                state_file=tmp_path / "rules-state.json",
                prometheus_retries=0,
            ),
        )
        host, port = service.start(f"127.0.0.1:{free_port()}")
        rules_url = f"http://{host}:{port}"
        try:
            wait_for(
                lambda: requests.get(f"{rules_url}/-/ready", timeout=5).status_code == 200,
                timeout=30,
                what="rule engine's first cycle",
            )
            engine = requests.get(f"{rules_url}/api/v1/servers", timeout=5).json()["servers"]
            assert set(engine) == set(SERVERS), engine
            app = create_app(console_config(tmp_path, rules_url, prom.url), start_background=False)
            Users(app.extensions["stacksense"].store).add("vera", "viewer", PASSWORD)
            client = app.test_client()
            login(client, "vera")
            html = client.get("/console/").text
            assert sorted(re.findall(r'data-server="([^"]+)"', html)) == list(SERVERS)
            for server in SERVERS:
                status = engine[server]["status"]
                assert f'<span class="badge st-{status}" data-status>{status}</span>' in html
            assert html.count(">42%<") == 2  # CPU from the real Prometheus
            page = client.get("/console/servers/alpha")
            assert page.status_code == 200 and "svg" in page.text
            assert client.get("/console/servers/nope").status_code == 404
            app.extensions["stacksense"].close()
        finally:
            service.stop()
