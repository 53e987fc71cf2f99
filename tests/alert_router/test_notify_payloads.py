"""Payload shapes (v4 webhook vs a real Alertmanager, PagerDuty v2 events) and config errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from alert_router.notify import (
    NOTIFIER_TYPES,
    AlertData,
    NotificationData,
    ReceiverConfigError,
    build_notifiers,
    render_template,
    sample_notification,
    webhook_payload,
)
from alert_router.notify.config import parse_duration
from alert_router.notify.pagerduty import PagerDutyNotifier
from alert_router.notify.templating import TemplateRef
from alert_router.notify.webhook import WebhookNotifier
from tests.peers.alertmanager import alertmanager
from tests.peers.http_receiver import HttpReceiver, Reply
from tests.peers.util import wait_for

NOW = datetime(2026, 11, 22, 12, 0, 5, 250000, tzinfo=UTC)


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver(
        path="/hook", validator=None, success=Reply(200, ""), invalid=lambda p: Reply(400, "")
    ) as receiver:
        yield receiver


def test_webhook_payload_matches_a_real_alertmanager(hook: HttpReceiver, tmp_path: Path) -> None:
    config = {
        "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "100ms"},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
    }
    hook.clear()
    with alertmanager(tmp_path, config) as am:
        alert = {
            "labels": {"alertname": "HighCpuUsage", "server": "web1"},
            "annotations": {"summary": "hot"},
            "generatorURL": "http://rules:9817/",
        }
        requests.post(f"{am.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
        [request] = wait_for(hook.requests, timeout=20, what="Alertmanager webhook")
    theirs = request.json()
    ours = webhook_payload(sample_notification())
    assert set(ours) == set(theirs)
    assert set(ours["alerts"][0]) == set(theirs["alerts"][0])
    assert theirs["version"] == ours["version"] == "4"
    assert theirs["alerts"][0]["endsAt"] == ours["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    for key in ("truncatedAlerts",):
        assert type(ours[key]) is type(theirs[key])


def test_webhook_payload_fields_and_times() -> None:
    data = NotificationData(
        receiver="r",
        status="resolved",
        alerts=[
            AlertData(
                "resolved", {"a": "1"}, {"s": "x"}, NOW - timedelta(hours=1), NOW, "http://g", "fp1"
            )
        ],
        group_labels={"a": "1"},
        common_labels={"a": "1"},
        common_annotations={"s": "x"},
        external_url="http://router:9818",
        group_key='{}:{a="1"}',
        truncated_alerts=0,
    )
    assert webhook_payload(data) == {
        "receiver": "r",
        "status": "resolved",
        "alerts": [
            {
                "status": "resolved",
                "labels": {"a": "1"},
                "annotations": {"s": "x"},
                "startsAt": "2026-11-22T11:00:05.25Z",
                "endsAt": "2026-11-22T12:00:05.25Z",
                "generatorURL": "http://g",
                "fingerprint": "fp1",
            }
        ],
        "groupLabels": {"a": "1"},
        "commonLabels": {"a": "1"},
        "commonAnnotations": {"s": "x"},
        "externalURL": "http://router:9818",
        "version": "4",
        "groupKey": '{}:{a="1"}',
        "truncatedAlerts": 0,
    }


def test_webhook_max_alerts_truncates_and_counts(hook: HttpReceiver) -> None:
    hook.clear()
    [notifier] = build_notifiers(
        {"name": "w", "webhook_configs": [{"url": hook.url, "max_alerts": 1}]},
        path="receivers[0]",
        global_config={},
    )
    assert isinstance(notifier, WebhookNotifier) and notifier.send_resolved is True
    notifier.notify(sample_notification())
    [request] = hook.requests()
    body = request.json()
    assert len(body["alerts"]) == 1 and body["truncatedAlerts"] == 2


def pd(**config: Any) -> PagerDutyNotifier:
    [notifier] = build_notifiers(
        {"name": "p", "pagerduty_configs": [{"routing_key": "k" * 32, **config}]},
        path="receivers[0]",
        global_config={},
    )
    assert isinstance(notifier, PagerDutyNotifier)
    return notifier


def test_pagerduty_trigger_event() -> None:
    data = sample_notification()
    event = pd(client_url="http://grafana:3000").event(data)
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == hashlib.sha256(data.group_key.encode()).hexdigest()
    payload = event["payload"]
    assert payload["summary"] == "[FIRING:2] HighCpuUsage"
    assert payload["severity"] == "critical"  # db1 is critical
    assert payload["source"] == "web1"
    assert payload["custom_details"]["num_firing"] == 2
    assert event["client"] == "StackSense" and event["client_url"] == "http://grafana:3000"
    assert event["links"][0]["href"].startswith("http://prometheus.example.com")


def test_pagerduty_resolve_event_when_the_group_resolved() -> None:
    data = sample_notification()
    resolved = NotificationData(**{**data.__dict__, "alerts": data.resolved, "status": "resolved"})
    event = pd().event(resolved)
    assert event == {
        "routing_key": "k" * 32,
        "event_action": "resolve",
        "dedup_key": hashlib.sha256(data.group_key.encode()).hexdigest(),
    }


def test_pagerduty_severity_template_must_be_a_pagerduty_severity() -> None:
    from alert_router.notify import NotifyError

    with pytest.raises(NotifyError, match="severity rendered to 'urgent'"):
        pd(severity="urgent").event(sample_notification())
    assert (
        pd(severity="{{ 'warning' }}").event(sample_notification())["payload"]["severity"]
        == "warning"
    )


def test_pagerduty_routing_key_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("f" * 32 + "\n")
    [notifier] = build_notifiers(
        {"name": "p", "pagerduty_configs": [{"routing_key_file": str(key)}]},
        path="receivers[0]",
        global_config={},
    )
    assert isinstance(notifier, PagerDutyNotifier)
    assert notifier.event(sample_notification())["routing_key"] == "f" * 32


@pytest.mark.parametrize(
    ("receiver", "message"),
    [
        ({"name": "x", "sms_configs": []}, "receivers[3].sms_configs: unknown key"),
        ({"email_configs": []}, "receivers[3].name: required"),
        (
            {"name": "x", "slack_configs": [{"channel": "#a"}]},
            "receivers[3].slack_configs[0].api_url: required (api_url or api_url_file)",
        ),
        (
            {"name": "x", "slack_configs": [{"api_url": "hooks.slack.com/x"}]},
            "receivers[3].slack_configs[0].api_url: must be an http:// or https:// URL",
        ),
        (
            {"name": "x", "slack_configs": [{"api_url": "https://h/x", "colour": "red"}]},
            "receivers[3].slack_configs[0].colour: unknown key",
        ),
        (
            {
                "name": "x",
                "webhook_configs": [
                    {
                        "url": "http://h/",
                        "http_config": {"authorization": {"credentials": "t", "scheme": "x"}},
                    }
                ],
            },
            "receivers[3].webhook_configs[0].http_config.authorization.scheme: unknown key",
        ),
        (
            {"name": "x", "webhook_configs": [{"url": "http://h/", "max_alerts": -1}]},
            "receivers[3].webhook_configs[0].max_alerts: must be an integer >= 0",
        ),
        (
            {"name": "x", "webhook_configs": [{"url": "http://h/", "timeout": "soon"}]},
            "receivers[3].webhook_configs[0].timeout: expected a duration, got 'soon'",
        ),
        (
            {"name": "x", "pagerduty_configs": [{"service_key": "abc"}]},
            "receivers[3].pagerduty_configs[0].service_key: Events API v1 is not supported",
        ),
        (
            {"name": "x", "pagerduty_configs": [{}]},
            "receivers[3].pagerduty_configs[0].routing_key: required",
        ),
        (
            {"name": "x", "pagerduty_configs": [{"routing_key_file": "/nonexistent/key"}]},
            "receivers[3].pagerduty_configs[0].routing_key_file: cannot read /nonexistent/key",
        ),
        (
            {"name": "x", "email_configs": [{"from": "a@b.c", "smarthost": "h:25"}]},
            "receivers[3].email_configs[0].to: required",
        ),
        (
            {"name": "x", "email_configs": [{"to": "a@b.c", "smarthost": "h:25"}]},
            "receivers[3].email_configs[0].from: required (or set global.smtp_from)",
        ),
        (
            {
                "name": "x",
                "email_configs": [{"to": "a@b.c", "from": "a@b.c", "smarthost": "mailhost"}],
            },
            "receivers[3].email_configs[0].smarthost: must be host:port",
        ),
        (
            {
                "name": "x",
                "email_configs": [
                    {"to": "a@b.c", "from": "a@b.c", "smarthost": "h:25", "tls": "maybe"}
                ],
            },
            "receivers[3].email_configs[0].tls: must be one of implicit, starttls, none",
        ),
        (
            {
                "name": "x",
                "email_configs": [{"to": "{{ oops", "from": "a@b.c", "smarthost": "h:25"}],
            },
            "receivers[3].email_configs[0].to: template syntax error",
        ),
        (
            {
                "name": "x",
                "email_configs": [
                    {"to": "a@b.c", "from": "a@b.c", "smarthost": "h:25", "html": "nope.html.j2"}
                ],
            },
            "receivers[3].email_configs[0].html: unknown template 'nope.html.j2'",
        ),
        (
            {
                "name": "x",
                "email_configs": [
                    {
                        "to": "a@b.c",
                        "from": "a@b.c",
                        "smarthost": "h:25",
                        "headers": {"Message-ID": "<x@y>"},
                    }
                ],
            },
            "receivers[3].email_configs[0].headers.Message-ID: set by the notifier",
        ),
        (
            {
                "name": "x",
                "email_configs": [
                    {"to": "a@b.c", "from": "a@b.c", "smarthost": "h:25", "auth_password": "pw"}
                ],
            },
            "receivers[3].email_configs[0].auth_username: required when auth_password is set",
        ),
    ],
)
def test_config_errors_name_the_key_path(receiver: dict[str, Any], message: str) -> None:
    with pytest.raises(ReceiverConfigError) as err:
        build_notifiers(receiver, path="receivers[3]", global_config={})
    assert str(err.value).startswith(message), str(err.value)


def test_config_error_never_echoes_a_secret_url() -> None:
    with pytest.raises(ReceiverConfigError) as err:
        build_notifiers(
            {"name": "x", "slack_configs": [{"api_url": "ftp://T0/B0/tokenXYZ"}]},
            path="receivers[0]",
            global_config={},
        )
    assert "tokenXYZ" not in str(err.value)


def test_notifier_types_and_defaults_follow_alertmanager() -> None:
    assert set(NOTIFIER_TYPES) == {
        "email_configs",
        "slack_configs",
        "webhook_configs",
        "pagerduty_configs",
    }
    receiver = {
        "name": "all",
        "email_configs": [{"to": "a@b.c", "from": "a@b.c", "smarthost": "h:25"}],
        "slack_configs": [{"api_url": "https://hooks.slack.com/services/x"}],
        "webhook_configs": [{"url": "http://h/"}],
        "pagerduty_configs": [{"routing_key": "k" * 32}],
    }
    notifiers = build_notifiers(receiver, path="receivers[0]", global_config={})
    assert {n.kind: n.send_resolved for n in notifiers} == {
        "email": False,
        "slack": False,
        "webhook": True,
        "pagerduty": True,
    }


def test_global_defaults_fill_email_and_pagerduty() -> None:
    glob = {
        "smtp_smarthost": "mail.example.com:465",
        "smtp_from": "a@example.com",
        "smtp_auth_username": "u",
        "smtp_auth_password": "pw",
        "pagerduty_url": "http://pd/",
    }
    email, pagerduty = build_notifiers(
        {
            "name": "g",
            "email_configs": [{"to": "b@example.com"}],
            "pagerduty_configs": [{"routing_key": "k" * 32}],
        },
        path="receivers[0]",
        global_config=glob,
    )
    assert email.redacted()["smarthost"] == "mail.example.com:465"
    assert email.redacted()["tls"] == "implicit" and email.redacted()["auth_password"] == (
        "<secret>"
    )
    assert pagerduty.redacted()["url"] == "http://pd/"


@pytest.mark.parametrize(
    "name",
    [
        "email.html.j2",
        "email.txt.j2",
        "email_subject.j2",
        "slack_title.j2",
        "pagerduty_description.j2",
    ],
)
def test_bundled_templates_render_the_sample(name: str) -> None:
    out = render_template(name, sample_notification())
    assert "HighCpuUsage" in out


def test_unknown_template_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown template 'nope.j2' \(available: email"):
        render_template("nope.j2", sample_notification())


def test_inline_templates_autoescape_html_only() -> None:
    data = NotificationData(**{**sample_notification().__dict__, "common_labels": {"x": "<b>"}})
    assert TemplateRef("{{ common_labels.x }}", path="p", flavor="html").render(data) == "&lt;b&gt;"
    assert TemplateRef("{{ common_labels.x }}", path="p").render(data) == "<b>"


def test_durations() -> None:
    assert parse_duration("1m30s", path="p") == 90
    assert parse_duration("500ms", path="p") == 0.5
    with pytest.raises(ReceiverConfigError, match="p: expected a duration, got '10'"):
        parse_duration("10", path="p")


NASTY = [
    "",
    " ",
    "\r\nBcc: x@example.com",
    "<!channel>",
    "{{ 7*7 }}",
    "{% raw %}",
    "\x00\x1b[31m",
    "日本語のラベル",
    "😀" * 100,
    "&amp;<b>",
    "a" * 20000,
    "%s%s%n",
    "\\",
    '"quoted"',
]


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_nasty_label_values_make_valid_payloads_everywhere(value: str) -> None:
    from alert_router.notify.email import EmailNotifier
    from alert_router.notify.slack import SlackNotifier
    from tests.peers.pagerduty import pagerduty_problems
    from tests.peers.slack import slack_problems
    from tests.peers.webhook import webhook_problems

    alerts = [
        AlertData(
            "firing",
            {
                "alertname": "HighCpuUsage",
                "server": value,
                "severity": "warning",
                value[:50] or "x": value,
            },
            {"summary": value, "description": value},
            NOW,
            None,
            value,
            "fp",
        )
        for _ in range(3)
    ]
    data = NotificationData(
        "r",
        "firing",
        alerts,
        {"server": value},
        {"server": value},
        {"summary": value},
        "http://router:9818",
        value,
    )
    notifiers = build_notifiers(
        {
            "name": "n",
            "slack_configs": [{"api_url": "https://h/x"}],
            "email_configs": [
                {"to": "a@example.com", "from": "b@example.com", "smarthost": "h:25"}
            ],
            "pagerduty_configs": [{"routing_key": "k" * 32}],
        },
        path="receivers[0]",
        global_config={},
    )
    slack, email, pagerduty = notifiers
    assert isinstance(slack, SlackNotifier) and isinstance(email, EmailNotifier)
    assert isinstance(pagerduty, PagerDutyNotifier)
    body = json.dumps(slack.payload(data)).encode()
    assert slack_problems("/", {"content-type": "application/json"}, body) == []
    assert pagerduty_problems("/", {}, json.dumps(pagerduty.event(data)).encode()) == []
    msg, _, _ = email.message(data)
    assert "\n" not in msg["Subject"] and msg["Bcc"] is None
    msg.as_bytes()  # serialisable for SMTP
    assert webhook_problems("/", {}, json.dumps(webhook_payload(data)).encode()) == []
