"""PagerDuty Events API v2: trigger on firing, resolve when the whole group resolved."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import requests

from alert_router.notify.base import (
    NotificationData,
    NotifyError,
    ReceiverConfigError,
    Secrets,
    format_time,
)
from alert_router.notify.config import Secret, Section
from alert_router.notify.http import parse_http_options, post_json, safe_target
from alert_router.notify.presentation import group_severity, headline
from alert_router.notify.resolved import only_what_to_send
from alert_router.notify.templating import TemplateRef, render_or_fail

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
KEYS = {
    "routing_key",
    "routing_key_file",
    "url",
    "client",
    "client_url",
    "description",
    "severity",
    "source",
    "class",
    "component",
    "group",
    "details",
    "links",
    "send_resolved",
    "http_config",
    "timeout",
}
PD_SEVERITIES = ("critical", "error", "warning", "info")
# Our severities onto PagerDuty's four; anything unknown is an "error", as Alertmanager sends.
SEVERITY_MAP = {
    "critical": "critical",
    "warning": "warning",
    "info": "info",
    "none": "info",
    "resolved": "info",
}
SUMMARY_MAX = 1024  # PagerDuty cuts payload.summary at 1024 characters
DETAILS_MAX = 50  # alert headlines listed in custom_details


def dedup_key(group_key: str) -> str:
    """The dedup key of a group, as Alertmanager computes it (SHA-256 of the group key)."""
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


class PagerDutyNotifier:
    """Sends Events API v2 events; the routing key is a secret."""

    kind = "pagerduty"

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        path: str,
        global_config: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        for legacy in ("service_key", "service_key_file"):
            if isinstance(raw, Mapping) and legacy in raw:
                raise ReceiverConfigError(
                    f"{path}.{legacy}: Events API v1 is not supported; use routing_key "
                    "(an Events API v2 integration key)"
                )
        section = Section(raw, path, KEYS)
        key = section.secret("routing_key", file_key="routing_key_file", required=True)
        assert key is not None
        self.routing_key: Secret = key
        self.url: str = section.string("url") or str(
            global_config.get("pagerduty_url") or DEFAULT_URL
        )
        if not self.url.startswith(("http://", "https://")):
            raise ReceiverConfigError(f"{section.key_path('url')}: must be an http(s) URL")
        self.send_resolved = section.boolean("send_resolved", True)
        self.client = section.string("client", "StackSense")
        self.client_url = section.string("client_url")
        self.source = section.string("source")
        self.fields = {k: section.string(k) for k in ("class", "component", "group")}
        self.description = TemplateRef(
            section.string("description", "pagerduty_description.j2") or "",
            path=section.key_path("description"),
        )
        severity = section.string("severity")
        self.severity = (
            TemplateRef(severity, path=section.key_path("severity")) if severity else None
        )
        self.details = {
            name: TemplateRef(spec, path=f"{section.key_path('details')}.{name}")
            for name, spec in section.string_map("details").items()
        }
        self.links = self._links(section)
        self.http = parse_http_options(section, global_config)
        self.session = session or requests.Session()
        self.secrets = Secrets.of(self.routing_key.reveal(), *self.http.secrets())

    @staticmethod
    def _links(section: Section) -> list[tuple[TemplateRef, str]]:
        raw = section.raw.get("links") or []
        if not isinstance(raw, list):
            raise ReceiverConfigError(f"{section.key_path('links')}: must be a list")
        links = []
        for i, item in enumerate(raw):
            link = Section(item, f"{section.key_path('links')}[{i}]", {"href", "text"})
            href = link.string("href", required=True) or ""
            links.append(
                (TemplateRef(href, path=link.key_path("href")), link.string("text", "") or "")
            )
        return links

    def event(self, data: NotificationData) -> dict[str, Any]:
        """The Events API v2 body for `data`."""
        key = dedup_key(data.group_key)
        if not data.firing:
            return {
                "routing_key": self.routing_key.reveal(),
                "event_action": "resolve",
                "dedup_key": key,
            }
        summary = " ".join(
            render_or_fail(self.description, data, kind=self.kind, what="description").split()
        )
        severity = SEVERITY_MAP.get(group_severity(data), "error")
        if self.severity is not None:
            severity = render_or_fail(self.severity, data, kind=self.kind, what="severity").strip()
            if severity not in PD_SEVERITIES:
                raise NotifyError(
                    f"pagerduty: severity rendered to {severity[:40]!r}, not one of "
                    f"{', '.join(PD_SEVERITIES)}",
                    retryable=False,
                    reason="template",
                )
        first = data.firing[0]
        source = (
            self.source
            or first.labels.get("server")
            or first.labels.get("instance")
            or self.client
            or "StackSense"
        )
        details: dict[str, Any] = {
            "num_firing": len(data.firing),
            "num_resolved": len(data.resolved),
            # capped: PagerDuty refuses events larger than 512 KB
            "firing": [headline(a)[:SUMMARY_MAX] for a in data.firing[:DETAILS_MAX]],
            "resolved": [headline(a)[:SUMMARY_MAX] for a in data.resolved[:DETAILS_MAX]],
            "group_labels": data.group_labels,
        }
        for name, template in self.details.items():
            details[name] = render_or_fail(template, data, kind=self.kind, what=f"details.{name}")
        payload: dict[str, Any] = {
            "summary": summary[:SUMMARY_MAX] or "StackSense alert",
            "source": source,
            "severity": severity,
            "timestamp": format_time(min(a.starts_at for a in data.firing)),
            "custom_details": details,
        }
        for name, value in self.fields.items():
            if value:
                payload[name] = value
        links = [
            {"href": render_or_fail(t, data, kind=self.kind, what="links.href"), "text": text}
            for t, text in self.links
        ]
        if not links and first.generator_url:
            links.append({"href": first.generator_url, "text": "Source"})
        body: dict[str, Any] = {
            "routing_key": self.routing_key.reveal(),
            "event_action": "trigger",
            "dedup_key": key,
            "payload": payload,
            "client": self.client,
            "client_url": self.client_url or data.external_url,
            "links": links,
        }
        return body

    def notify(self, data: NotificationData) -> None:
        """Send a trigger or resolve event; raise NotifyError on failure."""
        to_send = only_what_to_send(data, self.send_resolved)
        if to_send is None:
            return
        post_json(
            self.session,
            Secret(self.url),
            self.event(to_send),
            kind=self.kind,
            options=self.http,
            secrets=self.secrets,
        )

    def redacted(self) -> dict[str, Any]:
        """Effective config with secrets as "<secret>"."""
        return {
            "routing_key": "<secret>",
            "url": self.url,
            "send_resolved": self.send_resolved,
            "client": self.client,
            "client_url": self.client_url,
            "description": self.description.spec,
            **self.http.redacted(),
        }

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(target={safe_target(self.url)!r})"
