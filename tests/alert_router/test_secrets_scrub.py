"""Secrets never leave the router in any form: a receiver that echoes the request's headers
(Basic auth is base64 of user:password; URL credentials become such a header) in its error
must not put them in the history, the outbox, the log or test-notify's output. Config errors
never quote a line; every store file is private."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.peers.router import REPO, router
from tests.peers.util import free_port, serving, wait_for

pytestmark = pytest.mark.slow

BASIC_PW = "s3cret-basic-pw"
URL_PW = "url-pass-9876"
BEARER = "bearer-tok-123456"


def _forms() -> list[str]:
    """Every form a secret of this test could take in text."""
    b64 = [
        base64.b64encode(raw).decode()
        for raw in (f"alice:{BASIC_PW}".encode(), f"bob:{URL_PW}".encode())
    ]
    return [BASIC_PW, URL_PW, BEARER, *b64, *[v.rstrip("=") for v in b64]]


@pytest.fixture
def echo() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A receiver answering 400 with every request header in its body (as some do)."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(dict(self.headers))
            body = json.dumps(
                {"error": "bad request", "path": self.path, "headers": dict(self.headers)}
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    with serving(ThreadingHTTPServer(("127.0.0.1", port), Handler)):
        yield f"127.0.0.1:{port}", seen


def _config(host: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "basic",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "routes": [
                {"receiver": "basic", "continue": True},
                {"receiver": "urlcreds", "continue": True},
                {"receiver": "bearer"},
            ],
        },
        "receivers": [
            {
                "name": "basic",
                "webhook_configs": [
                    {
                        "url": f"http://{host}/basic",
                        "http_config": {"basic_auth": {"username": "alice", "password": BASIC_PW}},
                    }
                ],
            },
            {
                "name": "urlcreds",
                "webhook_configs": [{"url": f"http://bob:{URL_PW}@{host}/urlcreds"}],
            },
            {
                "name": "bearer",
                "webhook_configs": [
                    {
                        "url": f"http://{host}/bearer",
                        "http_config": {"authorization": {"credentials": BEARER}},
                    }
                ],
            },
        ],
        "delivery": {"initial_backoff": "1s", "max_backoff": "1s", "give_up_after": "3s"},
    }


def _leaks(text: str) -> list[str]:
    return [form for form in _forms() if form in text]


def test_echoed_credentials_are_scrubbed_everywhere(tmp_path, echo):
    host, seen = echo
    with router(tmp_path, _config(host), workers=2) as proc:
        resp = requests.post(
            f"{proc.url}/api/v2/alerts",
            headers=proc.auth,
            timeout=10,
            json=[{"labels": {"alertname": "Leak"}}],
        )
        assert resp.status_code == 200

        def failures() -> list[dict[str, Any]]:
            events = requests.get(
                f"{proc.url}/api/v1/history", timeout=10, params={"kind": "notification"}
            ).json()
            return [e for e in events if "400" in json.dumps(e)]

        wait_for(
            lambda: len({e["subject"] for e in failures()}) >= 1 and len(seen) >= 3,
            timeout=60,
            what="the three receivers tried and the failures recorded",
        )
        # The peer did see every credential: the scrubbing below is what keeps them in.
        auth_headers = " ".join(h.get("Authorization", "") for h in seen)
        assert base64.b64encode(f"alice:{BASIC_PW}".encode()).decode() in auth_headers
        assert base64.b64encode(f"bob:{URL_PW}".encode()).decode() in auth_headers
        assert BEARER in auth_headers

        history = requests.get(f"{proc.url}/api/v1/history", timeout=10).text
        assert "<secret>" in history
        assert _leaks(history) == []
        conn = sqlite3.connect(tmp_path / "router.db")
        try:
            errors = [r[0] for r in conn.execute("SELECT last_error FROM outbox") if r[0]]
        finally:
            conn.close()
        assert errors and _leaks("\n".join(errors)) == []
        # Every store file (main, WAL, shared memory, each worker's inbox) is private.
        store_files = [p for p in tmp_path.iterdir() if p.name.startswith("router.db")]
        assert len(store_files) >= 3
        for path in store_files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert _leaks(proc.log()) == []

    for receiver in ("basic", "urlcreds", "bearer"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "alert_router.cli",
                "-c",
                str(proc.config_path),
                "test-notify",
                receiver,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert result.returncode == 1 and "FAILED" in result.stderr
        assert _leaks(result.stdout + result.stderr) == [], receiver


def test_config_errors_never_quote_the_broken_line(tmp_path):
    token = tmp_path / "tokens"
    token.write_text("t\n")
    good = yaml.safe_dump(
        {
            "route": {"receiver": "r"},
            "receivers": [{"name": "r"}],
            "auth": {"tokens_file": str(token)},
            "storage": {"path": str(tmp_path / "r.db")},
        }
    )
    broken = good + f'x:\n  password: "hunter2-{BASIC_PW}\n  more: [1\n'
    path = tmp_path / "router.yml"
    path.write_text(broken)
    result = subprocess.run(
        [sys.executable, "-m", "alert_router.cli", "-c", str(path), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert "line " in result.stderr and "column " in result.stderr
    assert BASIC_PW not in result.stderr and "hunter2" not in result.stderr


def test_reload_error_never_quotes_the_broken_line(tmp_path):
    config = {"route": {"receiver": "r"}, "receivers": [{"name": "r"}]}
    with router(tmp_path, config, workers=2) as proc:
        text = proc.config_path.read_text()
        proc.config_path.write_text(text + f"bad: 'secret-{BEARER}\n")
        resp = requests.post(f"{proc.url}/-/reload", headers=proc.auth, timeout=10)
        assert resp.status_code == 500
        assert "line " in resp.json()["error"]
        assert BEARER not in resp.text
        path = Path(proc.workdir / "router.log")
    assert BEARER not in path.read_text()


def test_the_scrubber_knows_derived_forms():
    from alert_router.notify.base import Secrets

    secrets = Secrets.of(BASIC_PW, urls=[f"http://bob:{URL_PW}%21@h/x"])
    header = base64.b64encode(f"alice:{BASIC_PW}".encode()).decode()
    url_header = base64.urlsafe_b64encode(f"bob:{URL_PW}!".encode()).decode().rstrip("=")
    text = secrets.scrub(
        f"Basic {header}; Basic {url_header}; pw {URL_PW}! enc {URL_PW}%21; plain words stay"
    )
    assert text.count("<secret>") == 4 and "plain words stay" in text
    assert _leaks(text) == []
