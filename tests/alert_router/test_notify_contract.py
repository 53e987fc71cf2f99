"""Every notifier through the same failure table, against real loopback peers; no secret leaks.

HTTP notifiers (Slack, webhook, PagerDuty) talk to contract receivers that check each body
as the service documents it; email talks to a real aiosmtpd with STARTTLS and AUTH.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alert_router.notify import NotifyError, build_notifiers, sample_notification
from tests.peers.http_receiver import HttpReceiver, Reply
from tests.peers.pagerduty import pagerduty_receiver
from tests.peers.slack import slack_webhook
from tests.peers.smtp import SelfSignedCert, SmtpServer, smtp_server
from tests.peers.util import free_port
from tests.peers.webhook import webhook_validator

SLACK_PATH = "/services/T0SECRET/B0SECRET/slackSecretToken1234"
WEBHOOK_PATH = "/hooks/webhookSecretPath5678"
WEBHOOK_BEARER = "webhookBearerSecret9012"
PD_ROUTING_KEY = "pdRoutingKey0123456789abcdefABCD"  # 32 characters, like a real one
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtpPasswordSecret3456"
SECRETS = [
    SLACK_PATH,
    "slackSecretToken1234",
    WEBHOOK_PATH,
    "webhookSecretPath5678",
    WEBHOOK_BEARER,
    PD_ROUTING_KEY,
    SMTP_PASSWORD,
]
# what each kind's own receiver could echo back in an error body
OWN_SECRETS = {
    "slack": [SLACK_PATH, "slackSecretToken1234"],
    "webhook": [WEBHOOK_PATH, WEBHOOK_BEARER, "webhookSecretPath5678"],
    "pagerduty": [PD_ROUTING_KEY],
}


def webhook_receiver() -> HttpReceiver:
    return HttpReceiver(path=WEBHOOK_PATH, validator=webhook_validator(WEBHOOK_BEARER))


@dataclass
class Peers:
    slack: HttpReceiver
    webhook: HttpReceiver
    pagerduty: HttpReceiver
    smtp: SmtpServer
    smtp_plain: SmtpServer  # offers no STARTTLS
    silent_port: int  # accepts TCP connections, never says a word


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    tmp = tmp_path_factory.mktemp("notify-contract")
    cert = SelfSignedCert.create(tmp)
    rejects = {
        "bounce@example.com": "550 5.1.1 No such user",
        "busy@example.com": "450 4.2.1 Mailbox busy, try later",
    }
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    with (
        slack_webhook(SLACK_PATH) as slack,
        webhook_receiver() as webhook,
        pagerduty_receiver() as pd,
        smtp_server(
            tmp,
            tls="starttls",
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            cert=cert,
            reject_rcpt=rejects,
        ) as smtp,
        smtp_server(tmp, tls="none") as smtp_plain,
    ):
        yield Peers(slack, webhook, pd, smtp, smtp_plain, silent.getsockname()[1])
    silent.close()


def http_config(
    kind: str, peers: Peers, *, url: str | None = None, timeout: str = "2s"
) -> dict[str, Any]:
    if kind == "slack":
        return {
            "slack_configs": [
                {
                    "api_url": url or peers.slack.url,
                    "channel": "#ops",
                    "send_resolved": True,
                    "timeout": timeout,
                }
            ]
        }
    if kind == "webhook":
        return {
            "webhook_configs": [
                {
                    "url": url or peers.webhook.url,
                    "timeout": timeout,
                    "http_config": {
                        "authorization": {"type": "Bearer", "credentials": WEBHOOK_BEARER}
                    },
                }
            ]
        }
    return {
        "pagerduty_configs": [
            {"routing_key": PD_ROUTING_KEY, "url": url or peers.pagerduty.url, "timeout": timeout}
        ]
    }


def receiver_of(kind: str, peers: Peers) -> HttpReceiver:
    return {"slack": peers.slack, "webhook": peers.webhook, "pagerduty": peers.pagerduty}[kind]


# name -> (reply or special, expected (retryable, reason, retry_after) or None for success)
HTTP_TABLE: dict[str, tuple[Reply | str, tuple[bool, str, float | None] | None]] = {
    "accepted": ("success", None),
    "400": (Reply(400, "invalid_payload"), (False, "http_4xx", None)),
    "403": (Reply(403, "action_prohibited"), (False, "http_4xx", None)),
    "404": (Reply(404, "no_service"), (False, "http_4xx", None)),
    "410": (Reply(410, "channel_is_archived"), (False, "http_4xx", None)),
    "429": (Reply(429, "rate_limited", {"Retry-After": "7"}), (True, "rate_limited", 7.0)),
    "500": (Reply(500, "internal_error"), (True, "http_5xx", None)),
    "503-retry-after": (Reply(503, "unavailable", {"Retry-After": "3"}), (True, "http_5xx", 3.0)),
    "echoes-its-secrets": ("echo", (False, "http_4xx", None)),
    "timeout": (Reply(200, "ok", delay=1.2), (True, "timeout", None)),
    "refused": ("refused", (True, "connection", None)),
}

SMTP_TABLE: dict[str, tuple[dict[str, Any], tuple[bool, str] | None]] = {
    "delivered": ({}, None),
    "wrong-password": ({"auth_password": "not-the-password"}, (False, "auth")),
    "refused": ({"smarthost": "refused"}, (True, "connection")),
    "silent-server": ({"smarthost": "silent"}, (True, "timeout")),
    "recipient-550": ({"to": "bounce@example.com"}, (False, "smtp_rejected")),
    "recipient-450": ({"to": "busy@example.com"}, (True, "smtp_temporary")),
    "no-starttls": ({"smarthost": "plain"}, (False, "tls")),
}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked into: {text[:300]}"


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Captured log text without aiosmtpd's own wire log (the peer, not our code)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def run(notifier: Any, caplog: pytest.LogCaptureFixture) -> NotifyError | None:
    caplog.set_level(logging.DEBUG)
    try:
        notifier.notify(sample_notification())
    except NotifyError as exc:
        return exc
    return None


@pytest.mark.parametrize("case", list(HTTP_TABLE))
@pytest.mark.parametrize("kind", ["slack", "webhook", "pagerduty"])
def test_http_notifier_failure_table(
    kind: str, case: str, peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    reply, expected = HTTP_TABLE[case]
    receiver = receiver_of(kind, peers)
    receiver.clear()
    url = None
    if reply == "refused":
        url = f"http://127.0.0.1:{free_port()}{receiver.path}"
    elif reply == "echo":
        receiver.reply_with(Reply(401, "invalid token: " + " ".join(OWN_SECRETS[kind])))
    elif isinstance(reply, Reply):
        receiver.reply_with(reply)
    timeout = "500ms" if case == "timeout" else "2s"
    [notifier] = build_notifiers(
        {"name": "r", **http_config(kind, peers, url=url, timeout=timeout)},
        path="receivers[0]",
        global_config={},
    )
    error = run(notifier, caplog)
    if expected is None:
        assert error is None
        [request] = receiver.requests()
        assert request.problems == []
    else:
        assert error is not None, f"{kind} {case}: expected a NotifyError"
        retryable, reason, retry_after = expected
        assert (error.retryable, error.reason, error.retry_after) == (
            retryable,
            reason,
            retry_after,
        )
        assert str(error).startswith(f"{kind}: ")
        if case != "refused":
            assert f"127.0.0.1:{receiver.port}" in str(error)  # names where, not the secret
    assert_no_secret(
        str(error), repr(error), our_logs(caplog), repr(notifier), json.dumps(notifier.redacted())
    )


@pytest.mark.parametrize("case", list(SMTP_TABLE))
def test_email_notifier_failure_table(
    case: str, peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    overrides, expected = SMTP_TABLE[case]
    assert peers.smtp.cert is not None
    config: dict[str, Any] = {
        "to": "ops@example.com",
        "from": "StackSense <alerts@example.com>",
        "smarthost": peers.smtp.smarthost,
        "auth_username": SMTP_USER,
        "auth_password": SMTP_PASSWORD,
        "tls_config": {"ca_file": str(peers.smtp.cert.cert)},
        "timeout": "700ms",
    }
    config.update(overrides)
    hosts = {
        "refused": f"127.0.0.1:{free_port()}",
        "silent": f"127.0.0.1:{peers.silent_port}",
        "plain": peers.smtp_plain.smarthost,
    }
    config["smarthost"] = hosts.get(config["smarthost"], config["smarthost"])
    peers.smtp.clear()
    [notifier] = build_notifiers(
        {"name": "r", "email_configs": [config]}, path="receivers[0]", global_config={}
    )
    error = run(notifier, caplog)
    if expected is None:
        assert error is None
        [mail] = peers.smtp.wait_for_mails(1)
        assert mail.authenticated_as == SMTP_USER and mail.tls
    else:
        assert error is not None, f"email {case}: expected a NotifyError"
        assert (error.retryable, error.reason) == expected
        assert str(error).startswith(f"email: {config['smarthost']}")  # names host:port
        assert peers.smtp.delivered == []
    assert_no_secret(
        str(error), repr(error), our_logs(caplog), repr(notifier), json.dumps(notifier.redacted())
    )


def test_redacted_config_hides_every_secret(peers: Peers, tmp_path: Path) -> None:
    key_file = tmp_path / "pd-key"
    key_file.write_text(PD_ROUTING_KEY + "\n")
    receiver = {
        "name": "everything",
        **http_config("slack", peers),
        **http_config("webhook", peers),
        "pagerduty_configs": [{"routing_key_file": str(key_file)}],
        "email_configs": [
            {
                "to": "a@example.com",
                "from": "b@example.com",
                "smarthost": "mail.example.com:587",
                "auth_username": "u",
                "auth_password": SMTP_PASSWORD,
            }
        ],
    }
    notifiers = build_notifiers(receiver, path="receivers[0]", global_config={})
    assert [n.kind for n in notifiers] == ["slack", "webhook", "pagerduty", "email"]
    for notifier in notifiers:
        text = json.dumps(notifier.redacted()) + repr(notifier)
        assert_no_secret(text)
        assert "<secret>" in text
