"""Diagnostics in the first notification: a real exporter over a real sshd, the router's
dispatcher, and the mail as a real SMTP server receives it; a slow host never delays it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alert_router.app import create_app
from alert_router.config import parse_config
from alert_router.errors import ConfigError
from alert_router.notify import build_notifiers
from alert_router.notify.base import NotificationData, webhook_payload
from alert_router.notify.slack import SlackNotifier
from alert_router.timeutil import format_time
from tests.alert_router.harness import Harness, StubNotifier, base_config
from tests.exporter.test_diagnose import exporter_with, full_tmpfs  # noqa: F401 - fixture
from tests.peers.smtp import smtp_server
from tests.peers.sshd import SshdKeys

T0 = time.time() + 1000.0


@pytest.fixture
def make_router(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(exporter_url: str, timeout: str) -> Harness:
        config = base_config(
            tmp_path,
            diagnostics={"exporter_url": exporter_url, "timeout": timeout},
            route={
                "receiver": "default",
                "group_by": ["alertname", "server"],
                "group_wait": "30s",
                "routes": [{"matchers": ['severity="critical"'], "diagnostics": True}],
            },
        )
        stubs: dict[str, StubNotifier] = {}

        def factory(receiver: dict[str, Any], path: str, glob: dict[str, Any]) -> list[Any]:
            return [stubs.setdefault(receiver["name"], StubNotifier())]

        app = create_app(config, start_background=False, notifier_factory=factory)
        made.append(Harness(app, app.test_client(), stubs))
        return made[-1]

    yield make
    for harness in made:
        harness.state.close()


def fire(router: Harness, name: str, severity: str = "critical") -> None:
    resp = router.post(
        [
            {
                "labels": {"alertname": name, "server": "web1", "severity": severity},
                "startsAt": format_time(T0),
                "endsAt": format_time(T0 + 10_000),
            }
        ]
    )
    assert resp.status_code == 200, resp.data


def mail_text(data: NotificationData, tmp_path: Path) -> tuple[str, str]:
    with smtp_server(tmp_path / "smtp", tls="none") as smtp:
        [mailer] = build_notifiers(
            {
                "name": "mail",
                "email_configs": [
                    {"to": "ops@example.com", "smarthost": smtp.smarthost, "require_tls": False}
                ],
            },
            path="receivers[0]",
            global_config={"smtp_from": "alerts@example.com"},
        )
        mailer.notify(data)
        [mail] = smtp.wait_for_mails(1)
    text = mail.message.get_body(preferencelist=("plain",))
    html = mail.message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def slack_text(data: NotificationData) -> str:
    slack = SlackNotifier(
        {"api_url": "https://hooks.slack.com/services/T/B/x"},
        path="receivers[0].slack_configs[0]",
        global_config={},
    )
    return str(slack.payload(data))


def test_first_notification_carries_findings_to_mail_slack_webhook(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    full_tmpfs: Path,  # noqa: F811
    make_router: Callable[..., Harness],
) -> None:
    with exporter_with(tmp_path, ssh_keys) as exp:
        router = make_router(exp.url, "8s")
        fire(router, "HostDiskFull")
        fire(router, "Other", severity="warning")  # a route without diagnostics
        router.step(T0)  # the alert joins its group: the fetch starts
        router.step(T0 + 30)  # group_wait over: the first notification
    sent = {n.alerts[0].labels["alertname"]: n for n in router.stubs["default"].sent}
    assert sent["Other"].diagnostics is None
    assert "diagnostics" not in webhook_payload(sent["Other"])  # the exact v4 payload
    data = sent["HostDiskFull"]
    assert data.diagnostics is not None and data.diagnostics["included"], data.diagnostics
    [report] = data.diagnostics["reports"]
    first = report["findings"][0]["text"]
    assert str(full_tmpfs) in first and "dumps" in first and "100 % full" in first
    assert webhook_payload(data)["diagnostics"] == data.diagnostics
    assert str(full_tmpfs) in slack_text(data) and "Diagnostics" in slack_text(data)
    text, html = mail_text(data, tmp_path)
    assert "== DIAGNOSTICS ==" in text and f"{full_tmpfs}/dumps" in text
    assert f"{full_tmpfs}/dumps" in html


def test_a_slow_host_does_not_delay_the_notification(
    tmp_path: Path, ssh_keys: SshdKeys, make_router: Callable[..., Harness]
) -> None:
    # ps hangs: the exporter answers only after its ps sections time out (~2 s).
    with exporter_with(tmp_path, ssh_keys, fake={"ps": "#!/bin/sh\nsleep 60\n"}) as exp:
        router = make_router(exp.url, "1s")
        fire(router, "HostMemoryHigh")
        router.step(T0)
        started = time.monotonic()
        router.step(T0 + 30)
        elapsed = time.monotonic() - started
    assert elapsed < 1.8
    [data] = router.stubs["default"].sent
    assert data.diagnostics is not None and not data.diagnostics["included"]
    assert data.diagnostics["note"] == "sent without diagnostics: web1: no answer within 1s"
    text, _ = mail_text(data, tmp_path)
    assert "sent without diagnostics" in text


def test_unreachable_exporter_is_said_not_hidden(make_router: Callable[..., Harness]) -> None:
    router = make_router("http://127.0.0.1:9", "2s")
    fire(router, "HostDown")
    router.step(T0)
    router.step(T0 + 30)
    [data] = router.stubs["default"].sent
    assert data.diagnostics is not None
    assert "exporter not reachable (ConnectionError)" in data.diagnostics["note"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"timeout": "5s"}, "diagnostics.exporter_url"),
        ({"exporter_url": "ftp://x"}, "diagnostics.exporter_url"),
        ({"exporter_url": "http://x", "timeout": "5m"}, "diagnostics.timeout"),
        ({"exporter_url": "http://x", "extra": 1}, "diagnostics.extra"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(base_config(tmp_path, diagnostics=section))


def test_route_switch_must_be_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"route.routes\[0\].diagnostics"):
        parse_config(
            base_config(
                tmp_path,
                route={
                    "receiver": "default",
                    "routes": [{"receiver": "default", "diagnostics": "yes"}],
                },
            )
        )


def test_a_fetch_lost_to_a_restart_starts_at_the_flush(
    tmp_path: Path, ssh_keys: SshdKeys, make_router: Callable[..., Harness]
) -> None:
    with exporter_with(tmp_path, ssh_keys) as exp:
        router = make_router(exp.url, "8s")
        fire(router, "HostDiskFull")
        router.step(T0)
        dispatcher = router.state.dispatcher
        assert dispatcher is not None
        dispatcher.diagnostics.forget_group(next(iter(dispatcher.diagnostics._fetches))[0])
        router.step(T0 + 30)
    [data] = router.stubs["default"].sent
    assert data.diagnostics is not None and data.diagnostics["included"], data.diagnostics
