"""Console test helpers: the router config with the console, and logging in as a user.

The fixtures are in conftest.py; tests (and bench/console_bench.py) import these from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

TOKEN = "console-test-token"
PASSWORD = "correct horse battery"


def console_config(
    tmp_path: Path, peers_url: str, prometheus_url: str = "http://127.0.0.1:9", **console: Any
) -> dict[str, Any]:
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    return {
        "route": {
            "receiver": "null",
            "group_by": ["alertname", "server"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "null"}],
        "storage": {"path": str(tmp_path / "router.db")},
        "auth": {"tokens_file": str(tmp_path / "tokens")},
        "console": {
            "rules_url": peers_url,
            "exporter_url": peers_url,
            "prometheus_url": prometheus_url,
            "request_timeout": "2s",
            "session_key_file": str(tmp_path / "console.key"),
            **console,
        },
    }


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    page = client.get("/console/login")
    resp = client.post(
        "/console/login", data={"name": name, "password": password, "csrf": csrf_of(page.text)}
    )
    assert resp.status_code == 302, resp.text
    return csrf_of(client.get("/console/").text)
