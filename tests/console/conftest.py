"""Console fixtures: an in-process router app with the console, fake rule engine, users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from alert_router.app import create_app
from alert_router.console.users import Users
from tests.console.fake_peers import FakePeers, fake_peers

TOKEN = "console-test-token"
PASSWORD = "correct horse battery"


def console_config(tmp_path: Path, peers_url: str, prometheus_url: str = "http://127.0.0.1:9",
                   **console: Any) -> dict[str, Any]:
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    return {
        "route": {"receiver": "null", "group_by": ["alertname", "server"],
                  "group_wait": "0s", "group_interval": "1s", "repeat_interval": "4h"},
        "receivers": [{"name": "null"}],
        "storage": {"path": str(tmp_path / "router.db")},
        "auth": {"tokens_file": str(tmp_path / "tokens")},
        "console": {"rules_url": peers_url, "exporter_url": peers_url,
                    "prometheus_url": prometheus_url, "request_timeout": "2s",
                    "session_key_file": str(tmp_path / "console.key"), **console},
    }


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests add and log in many users: a cheaper scrypt cost keeps the suite fast. The
    # shipped cost is checked by test_users.py (hashes carry their parameters).
    monkeypatch.setattr("alert_router.console.users.SCRYPT_N", 2**12)


@pytest.fixture
def peers() -> Iterator[FakePeers]:
    with fake_peers() as p:
        yield p


@pytest.fixture
def app(tmp_path: Path, peers: FakePeers) -> Iterator[Flask]:
    application = create_app(console_config(tmp_path, peers.url), start_background=False)
    users = Users(application.extensions["stacksense"].store)
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        users.add(name, role, PASSWORD)
    yield application
    application.extensions["stacksense"].close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    page = client.get("/console/login")
    resp = client.post("/console/login", data={"name": name, "password": password,
                                               "csrf": csrf_of(page.text)})
    assert resp.status_code == 302, resp.text
    return csrf_of(client.get("/console/").text)
