"""Generic webhook: Alertmanager's version 4 payload, for any Alertmanager-compatible consumer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from alert_router.notify.base import NotificationData, Secrets, webhook_payload
from alert_router.notify.config import Section
from alert_router.notify.http import parse_http_options, post_json, safe_target, secret_url
from alert_router.notify.resolved import only_what_to_send

KEYS = {"url", "url_file", "send_resolved", "max_alerts", "http_config", "timeout"}


class WebhookNotifier:
    """POSTs the v4 webhook payload; the URL is a secret (it often carries a token)."""

    kind = "webhook"

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        path: str,
        global_config: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        section = Section(raw, path, KEYS)
        self.url = secret_url(section, "url", "url_file")
        self.send_resolved = section.boolean("send_resolved", True)
        self.max_alerts = section.integer("max_alerts", 0)
        self.http = parse_http_options(section, global_config)
        self.session = session or requests.Session()
        self.secrets = Secrets.of(*self.http.secrets(), urls=[self.url.reveal()])

    def notify(self, data: NotificationData) -> None:
        """POST the payload; raise NotifyError on failure."""
        to_send = only_what_to_send(data, self.send_resolved)
        if to_send is None:
            return
        payload = webhook_payload(to_send, max_alerts=self.max_alerts)
        post_json(
            self.session, self.url, payload, kind=self.kind, options=self.http, secrets=self.secrets
        )

    def redacted(self) -> dict[str, Any]:
        """Effective config with secrets as "<secret>"."""
        return {
            "url": "<secret>",
            "send_resolved": self.send_resolved,
            "max_alerts": self.max_alerts,
            **self.http.redacted(),
        }

    def __repr__(self) -> str:
        return f"WebhookNotifier(target={safe_target(self.url.reveal())!r})"
