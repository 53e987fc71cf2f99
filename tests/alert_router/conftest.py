"""Fixtures: an app per tmp_path (no background threads; tests call step(now) themselves).

The helpers they use live in tests/alert_router/harness.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from alert_router.app import create_app
from tests.alert_router.harness import (
    AUTH,
    PG_PASSWORD_ENV,
    TOKEN,
    Harness,
    StubNotifier,
    base_config,
)
from tests.peers.postgres import INSTALL_HINT, PostgresServer, pg_bindir, postgres

__all__ = ["AUTH", "PG_PASSWORD_ENV", "TOKEN", "Harness", "StubNotifier", "base_config"]


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
def pg_storage(
    pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
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
def harness_factory(tmp_path: Path, storage: dict[str, str]) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        config = base_config(tmp_path, **{"storage": storage, **overrides})
        stubs: dict[str, StubNotifier] = {}

        def factory(receiver: dict[str, Any], path: str, glob: dict[str, Any]) -> list[Any]:
            hooks = receiver.get("webhook_configs") or [{}]
            stub = stubs.setdefault(
                receiver["name"], StubNotifier(send_resolved=hooks[0].get("send_resolved", True))
            )
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
