"""Notifiers: email, Slack, webhook and PagerDuty, built from Alertmanager-style receiver config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests

from alert_router.notify.base import (
    AlertData,
    NotificationData,
    Notifier,
    NotifyError,
    ReceiverConfigError,
    webhook_payload,
)
from alert_router.notify.email import EmailNotifier
from alert_router.notify.pagerduty import PagerDutyNotifier
from alert_router.notify.sample import sample_notification
from alert_router.notify.slack import SlackNotifier
from alert_router.notify.templating import available_templates, render_template
from alert_router.notify.webhook import WebhookNotifier

# Each class builds a Notifier: mypy checks every one against the protocol.
NOTIFIER_TYPES: dict[str, Callable[..., Notifier]] = {
    "email_configs": EmailNotifier,
    "slack_configs": SlackNotifier,
    "webhook_configs": WebhookNotifier,
    "pagerduty_configs": PagerDutyNotifier,
}

__all__ = [
    "NOTIFIER_TYPES",
    "AlertData",
    "NotificationData",
    "Notifier",
    "NotifyError",
    "ReceiverConfigError",
    "available_templates",
    "build_notifiers",
    "render_template",
    "sample_notification",
    "webhook_payload",
]


def build_notifiers(
    receiver: Mapping[str, Any],
    *,
    path: str,
    global_config: Mapping[str, Any],
    session: requests.Session | None = None,
) -> list[Notifier]:
    """The notifiers of one `receivers:` entry; unknown keys raise ReceiverConfigError."""
    if not isinstance(receiver, Mapping):
        raise ReceiverConfigError(f"{path}: must be a mapping with name and *_configs")
    name = receiver.get("name")
    if not isinstance(name, str) or not name:
        raise ReceiverConfigError(f"{path}.name: required (a non-empty string)")
    session = session or requests.Session()
    notifiers: list[Notifier] = []
    for key, value in receiver.items():
        if key == "name":
            continue
        cls = NOTIFIER_TYPES.get(key)
        if cls is None:
            allowed = ", ".join(["name", *sorted(NOTIFIER_TYPES)])
            raise ReceiverConfigError(f"{path}.{key}: unknown key (allowed: {allowed})")
        if value is None:
            continue
        if not isinstance(value, list):
            raise ReceiverConfigError(f"{path}.{key}: must be a list")
        for i, item in enumerate(value):
            notifiers.append(
                cls(
                    item,
                    path=f"{path}.{key}[{i}]",
                    global_config=global_config or {},
                    session=session,
                )
            )
    return notifiers
