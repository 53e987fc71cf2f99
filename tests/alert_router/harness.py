"""The alert router's test harness: an app per test with stub notifiers, driven by step(now).

The fixtures that build it are in conftest.py; tests import the helpers from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from alert_router.notify.base import NotificationData, NotifyError
from alert_router.state import RouterState

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
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "server"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "default", "webhook_configs": [{"url": "http://127.0.0.1:9/hook"}]}],
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
