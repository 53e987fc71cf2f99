"""Console fixtures: an in-process router app with the console, fake rule engine, users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from alert_router.app import create_app
from alert_router.console.users import Users
from tests.console.fake_peers import FakePeers, fake_peers
from tests.console.session import PASSWORD, console_config


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
