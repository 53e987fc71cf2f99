"""Slack incoming webhook with Block Kit: header, one section per alert, colour by severity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from alert_router.diagnostics.fetch import as_text
from alert_router.notify.base import (
    AlertData,
    NotificationData,
    NotifyError,
    ReceiverConfigError,
    Secrets,
)
from alert_router.notify.config import Section, global_secret
from alert_router.notify.http import parse_http_options, post_json, safe_target, secret_url
from alert_router.notify.presentation import (
    alert_duration,
    by_severity,
    format_datetime,
    group_severity,
    headline,
    severity_color,
    silence_url,
)
from alert_router.notify.resolved import only_what_to_send
from alert_router.notify.templating import TemplateRef, render_or_fail, slack_escape

KEYS = {
    "api_url",
    "api_url_file",
    "channel",
    "username",
    "icon_emoji",
    "icon_url",
    "title",
    "title_link",
    "text",
    "color",
    "fallback",
    "send_resolved",
    "max_alerts",
    "http_config",
    "timeout",
}
# Slack's documented limits for messages and blocks.
MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
LINK_MAX = (SECTION_TEXT_MAX - 100) // 2  # two links share one context element
DEFAULT_MAX_ALERTS = 20  # two blocks per alert keeps us well under MAX_BLOCKS
SEVERITY_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
    "none": ":white_circle:",
}


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str, label: str) -> str:
    # inside <url|label> the URL must not contain the delimiters themselves
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{label}>"


class SlackNotifier:
    """Posts Block Kit messages to a Slack incoming webhook (the URL is a secret)."""

    kind = "slack"

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        path: str,
        global_config: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        section = Section(raw, path, KEYS)
        fallback_url = global_secret(global_config, "slack_api_url", "slack_api_url_file")
        self.url = secret_url(section, "api_url", "api_url_file", fallback=fallback_url)
        self.send_resolved = section.boolean("send_resolved", False)
        self.channel = section.string("channel")
        self.username = section.string("username")
        self.icon_emoji = section.string("icon_emoji")
        self.icon_url = section.string("icon_url")
        self.title_link = section.string("title_link")
        self.max_alerts = section.integer("max_alerts", DEFAULT_MAX_ALERTS, minimum=1)
        if self.max_alerts > DEFAULT_MAX_ALERTS:
            raise ReceiverConfigError(
                f"{section.key_path('max_alerts')}: at most {DEFAULT_MAX_ALERTS} "
                f"(Slack allows {MAX_BLOCKS} blocks per message)"
            )
        self.title = TemplateRef(
            section.string("title", "slack_title.j2") or "",
            path=section.key_path("title"),
            flavor="text",
        )
        text = section.string("text")
        self.text = (
            TemplateRef(text, path=section.key_path("text"), flavor="slack") if text else None
        )
        color = section.string("color")
        self.color = TemplateRef(color, path=section.key_path("color")) if color else None
        fallback = section.string("fallback")
        self.fallback = (
            TemplateRef(fallback, path=section.key_path("fallback")) if fallback else None
        )
        self.http = parse_http_options(section, global_config)
        self.session = session or requests.Session()
        self.secrets = Secrets.of(*self.http.secrets(), urls=[self.url.reveal()])

    def payload(self, data: NotificationData) -> dict[str, Any]:
        """The Block Kit message for `data`."""
        title = render_or_fail(self.title, data, kind=self.kind, what="title").strip()
        title = " ".join(title.split()) or "StackSense notification"
        severity = group_severity(data)
        color = (
            render_or_fail(self.color, data, kind=self.kind, what="color").strip()
            if self.color
            else severity_color(severity)
        )
        fallback = (
            render_or_fail(self.fallback, data, kind=self.kind, what="fallback")
            if self.fallback
            else slack_escape(title)
        )
        summary = f"*{len(data.firing)} firing*, {len(data.resolved)} resolved"
        if data.group_labels:
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(data.group_labels.items()))
            summary += f" · {slack_escape(pairs)}"
        if self.title_link:
            summary += f" · {_link(self.title_link, 'Open')}"
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": cut(title, HEADER_MAX), "emoji": True},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(summary, SECTION_TEXT_MAX)}},
        ]
        if self.text is not None:
            body = render_or_fail(self.text, data, kind=self.kind, what="text").strip()
            attached = [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": cut(body or " ", SECTION_TEXT_MAX)},
                }
            ]
        else:
            attached = self._alert_blocks(data)
        if data.diagnostics is not None:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": cut(
                            "*Diagnostics*\n" + slack_escape(as_text(data.diagnostics) or "none"),
                            SECTION_TEXT_MAX,
                        ),
                    },
                }
            )
        message: dict[str, Any] = {
            "text": cut(fallback, SECTION_TEXT_MAX),
            "blocks": blocks,
            "attachments": [
                {"color": color, "fallback": cut(fallback, SECTION_TEXT_MAX), "blocks": attached}
            ],
        }
        for key in ("channel", "username", "icon_emoji", "icon_url"):
            value = getattr(self, key)
            if value:
                message[key] = value
        return message

    def _alert_blocks(self, data: NotificationData) -> list[dict[str, Any]]:
        # most severe first, then what resolved
        shown = [*by_severity(data.firing), *data.resolved][: self.max_alerts]
        blocks: list[dict[str, Any]] = []
        for alert in shown:
            blocks.append(self._alert_section(alert))
            urls = [(alert.generator_url, "Source")]
            if alert.status == "firing":
                urls.append((silence_url(data, alert), "Silence"))
            # a link cannot be cut, so one too long for the context block is left out
            links = [_link(url, label) for url, label in urls if url and len(url) <= LINK_MAX]
            if links:
                blocks.append(
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]}
                )
        hidden = len(data.alerts) - len(shown) + data.truncated_alerts
        if hidden:
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"…and {hidden} more alerts not shown"}
                    ],
                }
            )
        return blocks

    def _alert_section(self, alert: AlertData) -> dict[str, Any]:
        severity = alert.labels.get("severity", "none")
        if alert.status == "resolved":
            icon, state = ":white_check_mark:", "RESOLVED"
            when = f"*Resolved*\n{format_datetime(alert.ends_at)} after {alert_duration(alert)}"
        else:
            icon, state = SEVERITY_ICONS.get(severity, ":warning:"), severity.upper()
            when = f"*Since*\n{format_datetime(alert.starts_at)} ({alert_duration(alert)})"
        text = f"{icon} *{slack_escape(state)}* {slack_escape(headline(alert))}"
        description = alert.annotations.get("description")
        if description:
            text += f"\n{slack_escape(description)}"
        fields = [{"type": "mrkdwn", "text": when}]
        for name in ("server", "alertname"):
            if alert.labels.get(name):
                fields.append(
                    {
                        "type": "mrkdwn",
                        "text": cut(
                            f"*{name.capitalize()}*\n{slack_escape(alert.labels[name])}",
                            FIELD_TEXT_MAX,
                        ),
                    }
                )
        others = ", ".join(
            f"{k}={v}"
            for k, v in sorted(alert.labels.items())
            if k not in ("server", "alertname", "severity")
        )
        if others:
            fields.append(
                {"type": "mrkdwn", "text": cut(f"*Labels*\n{slack_escape(others)}", FIELD_TEXT_MAX)}
            )
        return {
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_MAX)},
            "fields": fields,
        }

    def notify(self, data: NotificationData) -> None:
        """Post to the webhook; 429 carries Slack's Retry-After in the error."""
        to_send = only_what_to_send(data, self.send_resolved)
        if to_send is None:
            return
        resp = post_json(
            self.session,
            self.url,
            self.payload(to_send),
            kind=self.kind,
            options=self.http,
            secrets=self.secrets,
        )
        body = resp.text.strip()
        # An incoming webhook answers "ok"; a JSON {"ok": false} means a Web API URL was given.
        if body not in ("ok", "") and '"ok":true' not in body.replace(" ", ""):
            raise NotifyError(
                f"slack: {safe_target(self.url.reveal())} answered HTTP {resp.status_code} "
                f"without ok: {self.secrets.scrub(body)[:200]}",
                retryable=False,
                reason="http_4xx",
            )

    def redacted(self) -> dict[str, Any]:
        """Effective config with secrets as "<secret>"."""
        return {
            "api_url": "<secret>",
            "send_resolved": self.send_resolved,
            "channel": self.channel,
            "username": self.username,
            "icon_emoji": self.icon_emoji,
            "title": self.title.spec,
            "text": self.text.spec if self.text else None,
            "max_alerts": self.max_alerts,
            **self.http.redacted(),
        }

    def __repr__(self) -> str:
        return f"SlackNotifier(target={safe_target(self.url.reveal())!r}, channel={self.channel!r})"
