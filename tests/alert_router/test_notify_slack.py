"""Slack notifier against the Slack-contract receiver: Block Kit, colours, escaping, limits."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alert_router.notify import (
    AlertData,
    NotificationData,
    NotifyError,
    build_notifiers,
    sample_notification,
)
from alert_router.notify.http import retry_after_seconds
from alert_router.notify.presentation import SEVERITY_COLORS
from alert_router.notify.slack import SlackNotifier
from tests.peers.http_receiver import HttpReceiver, Reply
from tests.peers.slack import slack_problems, slack_webhook

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def slack_module() -> Iterator[HttpReceiver]:
    with slack_webhook() as receiver:
        yield receiver


@pytest.fixture()
def slack(slack_module: HttpReceiver) -> HttpReceiver:
    slack_module.clear()
    return slack_module


def make(
    receiver: HttpReceiver, global_config: dict[str, Any] | None = None, **overrides: Any
) -> SlackNotifier:
    config: dict[str, Any] = {"api_url": receiver.url, "send_resolved": True}
    config.update(overrides)
    [notifier] = build_notifiers(
        {"name": "chat", "slack_configs": [config]},
        path="receivers[1]",
        global_config=global_config or {},
    )
    assert isinstance(notifier, SlackNotifier)
    return notifier


def alert(server: str, severity: str, status: str = "firing", **labels: str) -> AlertData:
    return AlertData(
        status=status,
        labels={"alertname": "HighCpuUsage", "server": server, "severity": severity, **labels},
        annotations={"summary": f"CPU on {server}"},
        starts_at=NOW - timedelta(minutes=5),
        ends_at=NOW if status == "resolved" else None,
        generator_url="http://prom:9090/graph",
        fingerprint=f"fp-{server}",
    )


def group(*alerts: AlertData) -> NotificationData:
    return NotificationData(
        receiver="chat",
        status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
        alerts=list(alerts),
        group_labels={"alertname": "HighCpuUsage"},
        common_labels={"alertname": "HighCpuUsage"},
        common_annotations={},
        external_url="http://router:9818",
        group_key="g",
    )


def sent(receiver: HttpReceiver) -> dict[str, Any]:
    [request] = receiver.requests()
    assert request.problems == [], request.problems
    body: dict[str, Any] = request.json()
    return body


def test_block_kit_message_is_valid_and_complete(slack: HttpReceiver) -> None:
    make(slack, channel="#ops", username="StackSense", icon_emoji=":rotating_light:").notify(
        sample_notification()
    )
    body = sent(slack)
    assert body["channel"] == "#ops" and body["username"] == "StackSense"
    assert body["icon_emoji"] == ":rotating_light:"
    assert body["text"] == "[FIRING:2] HighCpuUsage"  # the notification fallback
    header = body["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[FIRING:2] HighCpuUsage", "emoji": True},
    }
    [attachment] = body["attachments"]
    sections = [b for b in attachment["blocks"] if b["type"] == "section"]
    assert len(sections) == 3  # one per alert
    # most severe first: db1 (critical) before web1 (warning), then the resolved one
    assert sections[0]["text"]["text"].startswith(":red_circle: *CRITICAL* CPU usage on db1")
    assert "*WARNING* CPU usage on web1" in sections[1]["text"]["text"]
    assert ":white_check_mark: *RESOLVED*" in sections[2]["text"]["text"]
    assert "|Silence>" in json.dumps(attachment["blocks"])


@pytest.mark.parametrize(
    ("alerts", "color"),
    [
        ([alert("a", "critical"), alert("b", "warning")], SEVERITY_COLORS["critical"]),
        ([alert("a", "warning"), alert("b", "info")], SEVERITY_COLORS["warning"]),
        ([alert("a", "info")], SEVERITY_COLORS["info"]),
        ([alert("a", "critical", "resolved")], SEVERITY_COLORS["resolved"]),
    ],
)
def test_colour_bar_follows_the_highest_firing_severity(
    slack: HttpReceiver, alerts: list[AlertData], color: str
) -> None:
    make(slack).notify(group(*alerts))
    assert sent(slack)["attachments"][0]["color"] == color


def test_label_values_cannot_ping_or_format(slack: HttpReceiver) -> None:
    make(slack).notify(group(alert("<!channel> & <http://evil|click>", "warning")))
    raw = slack.requests()[0].body.decode()
    assert "<!channel>" not in raw and "<http://evil" not in raw
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in json.dumps(sent(slack))


def test_custom_text_template_escapes_expressions_only(slack: HttpReceiver) -> None:
    text = "*Team*: {{ common_labels.alertname }} {{ alerts[0].labels.who }} <!here>"
    make(slack, text=text).notify(group(alert("web1", "warning", who="<@U123>")))
    body = json.dumps(sent(slack)["attachments"][0]["blocks"])
    assert "*Team*: HighCpuUsage &lt;@U123&gt; <!here>" in body  # config text stays as written


def test_many_alerts_and_long_text_stay_within_slack_limits(slack: HttpReceiver) -> None:
    long = "x" * 5000
    alerts = [
        dataclasses.replace(
            alert(f"web{i}", "warning"), annotations={"summary": "s", "description": long}
        )
        for i in range(60)
    ]
    make(slack).notify(dataclasses.replace(group(*alerts), truncated_alerts=5))
    body = sent(slack)  # the receiver checked every Slack limit: no problems
    blocks = body["attachments"][0]["blocks"]
    assert len(body["blocks"]) + len(blocks) <= 50
    assert blocks[-1]["elements"][0]["text"] == "…and 45 more alerts not shown"


def test_send_resolved_defaults_to_false_like_alertmanager(slack: HttpReceiver) -> None:
    notifier = make(slack, send_resolved=None)
    assert notifier.send_resolved is False
    notifier.notify(group(alert("web1", "warning", "resolved")))
    assert slack.requests() == []


def test_rate_limit_carries_retry_after_then_delivery_succeeds(slack: HttpReceiver) -> None:
    notifier = make(slack)
    slack.reply_with(Reply(429, "rate_limited", {"Retry-After": "30"}))
    with pytest.raises(NotifyError) as err:
        notifier.notify(sample_notification())
    assert (err.value.retryable, err.value.reason, err.value.retry_after) == (
        True,
        "rate_limited",
        30.0,
    )
    notifier.notify(sample_notification())  # what the outbox does after waiting
    assert len(slack.requests()) == 2 and slack.requests()[1].problems == []


def test_ok_status_without_ok_body_is_an_error(slack: HttpReceiver) -> None:
    slack.reply_with(Reply(200, '{"ok":false,"error":"not_authed"}'))
    with pytest.raises(NotifyError) as err:
        make(slack).notify(sample_notification())
    assert not err.value.retryable and "not_authed" in str(err.value)


def test_api_url_from_file_or_global(slack: HttpReceiver, tmp_path: Path) -> None:
    url_file = tmp_path / "slack-url"
    url_file.write_text(slack.url + "\n")
    make(slack, api_url=None, api_url_file=str(url_file)).notify(sample_notification())
    make(slack, {"slack_api_url_file": str(url_file)}, api_url=None).notify(sample_notification())
    make(slack, {"slack_api_url": slack.url}, api_url=None).notify(sample_notification())
    assert [r.problems for r in slack.requests()] == [[], [], []]


def test_receiver_itself_rejects_what_slack_rejects() -> None:
    too_long = {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}
    assert slack_problems(
        "/", {"content-type": "application/json"}, json.dumps(too_long).encode()
    ) == ["blocks[0].text.text: 151 characters, more than 150"]
    assert slack_problems("/", {"content-type": "application/json"}, b"{}") == ["no_text"]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
