"""Alertmanager-compatible webhooks: a recording receiver and what a v4 consumer rejects.

`webhook_receiver()` records deliveries at /hook and can answer with an error status or be
stopped and restarted on the same port, to play a receiver that is down for a while.
`webhook_problems` is the contract: the keys of Alertmanager's webhook payload, version 4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tests.peers.http_receiver import HttpReceiver, Reply, Validator

V4_KEYS = {
    "receiver",
    "status",
    "alerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "version",
    "groupKey",
    "truncatedAlerts",
}
V4_ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}


def webhook_problems(
    path: str, headers: Mapping[str, str], body: bytes, bearer: str | None = None
) -> list[str]:
    """What an Alertmanager-compatible webhook consumer would reject (and a wrong token)."""
    problems = []
    if bearer is not None and headers.get("authorization") != f"Bearer {bearer}":
        problems.append("authorization: missing or wrong bearer token")
    try:
        payload = json.loads(body)
    except ValueError:
        return [*problems, "body: not JSON"]
    if not isinstance(payload, dict):
        return [*problems, "body: must be a JSON object"]
    if set(payload) != V4_KEYS:
        problems.append(f"keys: {sorted(set(payload) ^ V4_KEYS)}")
    if payload.get("version") != "4":
        problems.append("version: must be 4")
    for i, alert in enumerate(payload.get("alerts", [])):
        if set(alert) != V4_ALERT_KEYS:
            problems.append(f"alerts[{i}] keys: {sorted(set(alert) ^ V4_ALERT_KEYS)}")
    return problems


def webhook_validator(bearer: str | None = None) -> Validator:
    """`webhook_problems` expecting `bearer` as the Authorization bearer token."""

    def validate(path: str, headers: Mapping[str, str], body: bytes) -> list[str]:
        return webhook_problems(path, headers, body, bearer)

    return validate


class WebhookReceiver(HttpReceiver):
    """Records webhook deliveries; `status` set to 503 plays a failing receiver."""

    def __init__(
        self, port: int = 0, path: str = "/hook", validator: Validator | None = None
    ) -> None:
        super().__init__(path=path, port=port, validator=validator, success=Reply(200, ""))

    @property
    def received(self) -> list[dict[str, Any]]:
        """The payload of every delivery it accepted, in arrival order."""
        return [r.json() for r in self.requests() if 200 <= r.status < 300]

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every accepted delivery, in arrival order."""
        return [a for payload in self.received for a in payload["alerts"]]


@contextmanager
def webhook_receiver(
    port: int | None = None, path: str = "/hook", validator: Validator | None = None
) -> Iterator[WebhookReceiver]:
    """A running receiver on loopback (`port` None: a free one)."""
    with WebhookReceiver(port or 0, path, validator) as receiver:
        yield receiver
