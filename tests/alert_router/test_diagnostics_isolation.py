"""A hanging diagnose endpoint delays only its own group: the real router process, a real
HTTP server standing in for the exporter's diagnose API, and a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = pytest.mark.slow
TIMEOUT = 6.0  # diagnostics.timeout: the most a notification may wait for them
GROUP_WAIT = 1.0
REPORT = {
    "complete": True,
    "duration_seconds": 0.1,
    "findings": [{"text": "/var is 100 % full", "action": "free space", "evidence": []}],
}


@contextmanager
def diagnose_api(hung: str) -> Iterator[str]:
    """POST /api/v1/diagnose/<server>: a report at once, except for `hung`, which gets no
    answer until the test ends (a host whose diagnosis hangs, an exporter stuck on it)."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rsplit("/", 1)[-1] == hung:
                release.wait(60)
            body = json.dumps(REPORT).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_hanging_diagnosis_delays_only_its_own_group(tmp_path: Path) -> None:
    with diagnose_api(hung="db1") as exporter, webhook_receiver() as hook:
        config = {
            "diagnostics": {"exporter_url": exporter, "timeout": f"{TIMEOUT:g}s"},
            "route": {
                "receiver": "hook",
                "group_by": ["alertname", "server"],
                "group_wait": f"{GROUP_WAIT:g}s",
                "group_interval": "5m",
                "diagnostics": True,
            },
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config) as proc:

            def fire(server: str) -> float:
                resp = requests.post(
                    f"{proc.url}/api/v2/alerts",
                    headers=proc.auth,
                    json=[{"labels": {"alertname": "DiskFull", "server": server}}],
                    timeout=10,
                )
                assert resp.status_code == 200, resp.text
                return time.monotonic()

            # Group A (db1) becomes due first, so it is the one a flush would wait on.
            posted_a = fire("db1")
            time.sleep(0.5)
            posted_b = fire("web1")
            wait_for(
                lambda: len(hook.requests()) >= 2, timeout=TIMEOUT + 10, what="both notifications"
            )
    arrived = {r.json()["commonLabels"]["server"]: (r.at, r.json()) for r in hook.requests()}
    at_a, payload_a = arrived["db1"]
    at_b, payload_b = arrived["web1"]
    # B is not held up by A's hanging diagnosis: it leaves after its own group_wait (the
    # old flush-inside-the-transaction waited TIMEOUT for A first).
    assert at_b - posted_b < GROUP_WAIT + 2.5, at_b - posted_b
    assert at_b < at_a
    assert payload_b["diagnostics"]["included"], payload_b["diagnostics"]
    assert payload_b["diagnostics"]["reports"][0]["findings"][0]["text"] == "/var is 100 % full"
    # A goes within the bound, saying why it has no diagnostics.
    assert at_a - posted_a < TIMEOUT + 2.5, at_a - posted_a
    assert not payload_a["diagnostics"]["included"]
    assert (
        payload_a["diagnostics"]["note"]
        == f"sent without diagnostics: db1: no answer within {TIMEOUT:g}s"
    )
