"""The engine's alerts are accepted by the StackSense alert router over real HTTP."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from rules.alerts import AlertBook, AlertRecord, send_alerts
from rules.config import Receiver
from tests.peers.util import wait_for

TOKEN = "rules-to-router"


@pytest.fixture
def router(tmp_path):
    create_app = pytest.importorskip("alert_router.app").create_app
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    app = create_app(
        {
            "route": {"receiver": "default", "group_by": ["alertname", "server"]},
            "receivers": [
                {"name": "default", "webhook_configs": [{"url": "http://127.0.0.1:9/h"}]}
            ],
            "storage": {"path": str(tmp_path / "router.db")},
            "auth": {"tokens_file": str(tmp_path / "tokens")},
        }
    )  # with its background threads: it ingests and dispatches by itself
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["stacksense"].close()


def test_router_accepts_and_resolves_engine_alerts(router, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    now = time.time()
    book = AlertBook()
    offline = AlertRecord(
        {"alertname": "ServerOffline", "server": "db1", "severity": "critical"},
        {"summary": "db1 is offline (no heartbeat)"},
        now - 30,
        generator_url="http://rules:9817/api/v1/servers/db1",
    )
    anomaly = AlertRecord(
        {
            "alertname": "MetricAnomaly",
            "server": "web1",
            "metric": "cpu",
            "anomaly_severity": "high",
            "severity": "warning",
        },
        {"summary": "Unusual cpu on web1"},
        now - 10,
    )
    watchdog = AlertRecord({"alertname": "Watchdog", "severity": "none"}, {}, now - 60)
    book.sync([offline, anomaly, watchdog], now)
    receivers = [Receiver(router, bearer_token_file=token)]
    session = requests.Session()
    result = send_alerts(session, receivers, book.payload(now, 300))
    assert result.sent == {router: 3} and not result.errors

    def firing():
        resp = requests.get(
            f"{router}/api/v2/alerts", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        resp.raise_for_status()
        return {a["labels"]["alertname"]: a for a in resp.json()}

    got = wait_for(
        lambda: (g := firing()) and len(g) == 3 and g,
        timeout=15,
        what="the router ingested the alerts",
    )
    assert set(got) == {"ServerOffline", "MetricAnomaly", "Watchdog"}
    assert got["ServerOffline"]["generatorURL"] == "http://rules:9817/api/v1/servers/db1"
    assert got["MetricAnomaly"]["labels"]["anomaly_severity"] == "high"

    later = time.time()
    book.sync([anomaly, watchdog], later)  # db1 is back: ServerOffline resolves (endsAt=now)
    assert send_alerts(session, receivers, book.payload(later, 300)).sent == {router: 3}
    wait_for(
        lambda: set(firing()) == {"MetricAnomaly", "Watchdog"},
        timeout=15,
        what="ServerOffline resolved in the router",
    )

    unauthenticated = send_alerts(session, [Receiver(router)], book.payload(later, 300))
    assert unauthenticated.failed == {router: 3} and "HTTP 401" in unauthenticated.errors[router]
