"""Fixtures: an app per tmp_path (no background threads; tests call step(now) themselves)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from alert_router.app import create_app
from alert_router.notify.base import NotificationData, NotifyError
from alert_router.state import RouterState
from tests.peers.postgres import INSTALL_HINT, PostgresServer, pg_bindir, postgres

PG_PASSWORD_ENV = "STACKSENSE_TEST_PG_PASSWORD"
TOKEN = "router-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class StubNotifier:
    """Records notifications; `fail_with` makes the next sends raise (the outbox retries)."""

    kind: str = "stub"
    send_resolved: bool = True
    sent: list[NotificationData] = field(default_factory=list)
    fail_with: NotifyError | None = None

    def notify(self, data: NotificationData) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(data)

    def redacted(self) -> dict[str, Any]:
        return {}


def base_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A small valid config: one webhook receiver per name in `receivers` (default one)."""
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    config: dict[str, Any] = {
        "route": {"receiver": "default", "group_by": ["alertname", "server"],
                  "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [{"name": "default",
                       "webhook_configs": [{"url": "http://127.0.0.1:9/hook"}]}],
        "storage": {"path": str(tmp_path / "router.db")},
        "auth": {"tokens_file": str(tmp_path / "tokens")},
    }
    config.update(overrides)
    return config


@dataclass
class Harness:
    """An app with stub notifiers per receiver, driven by step(now)."""

    app: Flask
    client: FlaskClient
    stubs: dict[str, StubNotifier]

    @property
    def state(self) -> RouterState:
        state: RouterState = self.app.extensions["stacksense"]
        return state

    def post(self, alerts: list[dict[str, Any]], path: str = "/api/v2/alerts") -> Any:
        return self.client.post(path, json=alerts, headers=AUTH)

    def step(self, now: float) -> Any:
        result = self.state.dispatcher.step(now)  # type: ignore[union-attr]
        self.state.outbox.step(now)  # type: ignore[union-attr]
        return result


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (started on first use). Never skipped."""
    try:
        pg_bindir()
    except RuntimeError:
        pytest.fail(INSTALL_HINT)
    with postgres() as server:
        yield server


@pytest.fixture
def pg_storage(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[dict[str, str]]:
    """A storage section for a new empty database (dropped after the test)."""
    monkeypatch.setenv(PG_PASSWORD_ENV, pg_server.password)
    name = pg_server.create_database()
    yield {"url": pg_server.url(name), "password_env": PG_PASSWORD_ENV}
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The store of harness apps: each such test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return {"path": str(tmp_path / "router.db")}
    section: dict[str, str] = request.getfixturevalue("pg_storage")
    return section


@pytest.fixture
def harness_factory(tmp_path: Path, storage: dict[str, str]
                    ) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        config = base_config(tmp_path, **{"storage": storage, **overrides})
        stubs: dict[str, StubNotifier] = {}

        def factory(receiver: dict[str, Any], path: str, glob: dict[str, Any]) -> list[Any]:
            hooks = receiver.get("webhook_configs") or [{}]
            stub = stubs.setdefault(receiver["name"], StubNotifier(
                send_resolved=hooks[0].get("send_resolved", True)))
            return [stub]

        app = create_app(config, start_background=False, notifier_factory=factory)
        harness = Harness(app, app.test_client(), stubs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.state.close()


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()


@pytest.fixture
def client(harness: Harness) -> FlaskClient:
    return harness.client
