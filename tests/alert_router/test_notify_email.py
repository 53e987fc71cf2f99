"""Email notifier against a real SMTP server (aiosmtpd): STARTTLS + AUTH, implicit TLS, content."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from alert_router.notify import (
    AlertData,
    NotificationData,
    NotifyError,
    build_notifiers,
    sample_notification,
)
from alert_router.notify.email import EmailNotifier
from tests.peers.smtp import SelfSignedCert, SmtpServer, smtp_server

USER, PASSWORD = "alerts@example.com", "s3cret-smtp-password"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return SelfSignedCert.create(tmp_path_factory.mktemp("smtp-cert"))


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory, cert: SelfSignedCert) -> Iterator[SmtpServer]:
    with smtp_server(
        tmp_path_factory.mktemp("smtp"), tls="starttls", username=USER, password=PASSWORD, cert=cert
    ) as server:
        yield server


@pytest.fixture()
def mailbox(smtp: SmtpServer) -> SmtpServer:
    smtp.clear()
    return smtp


def notifier(server: SmtpServer, **overrides: Any) -> EmailNotifier:
    assert server.cert is not None
    config: dict[str, Any] = {
        "to": "ops@example.com",
        "smarthost": server.smarthost,
        "auth_username": USER,
        "auth_password": PASSWORD,
        "tls_config": {"ca_file": str(server.cert.cert)},
    }
    config.update(overrides)
    [built] = build_notifiers(
        {"name": "mail", "email_configs": [config]},
        path="receivers[0]",
        global_config={"smtp_from": "StackSense <alerts@example.com>"},
    )
    assert isinstance(built, EmailNotifier)
    return built


def alert(
    name: str,
    server: str,
    *,
    status: str = "firing",
    severity: str = "critical",
    **annotations: str,
) -> AlertData:
    return AlertData(
        status=status,
        labels={"alertname": name, "server": server, "severity": severity},
        annotations=dict(annotations),
        starts_at=NOW - timedelta(minutes=30),
        ends_at=NOW if status == "resolved" else None,
        generator_url="http://rules.example.com:9817/",
        fingerprint=f"fp-{name}-{server}",
    )


def group(*alerts: AlertData, common: dict[str, str] | None = None) -> NotificationData:
    labels = common if common is not None else dict(alerts[0].labels)
    return NotificationData(
        receiver="mail",
        status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
        alerts=list(alerts),
        group_labels={"alertname": alerts[0].labels["alertname"]},
        common_labels=labels,
        common_annotations={},
        external_url="http://router.example.com:9818",
        group_key='{}:{alertname="X"}',
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_starttls_auth_delivers_multipart_mail(mailbox: SmtpServer) -> None:
    notifier(mailbox, send_resolved=True).notify(sample_notification())
    [mail] = mailbox.wait_for_mails(1)
    assert mail.tls and mail.authenticated_as == USER
    assert mail.mail_from == "alerts@example.com" and mail.rcpt_tos == ["ops@example.com"]
    msg = mail.message
    assert msg["Subject"] == "[FIRING:2] HighCpuUsage"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"].endswith("@example.com>") and msg["Date"]
    text, html = parts(msg)
    assert "== FIRING (2) ==" in text and "== RESOLVED (1) ==" in text
    assert "CPU usage on db1 is 99%" in text and "CPU usage on db1 is 99%" in html
    assert text.index("[CRITICAL]") < text.index("[WARNING]")  # most severe first
    assert "Firing (2)" in html and "Resolved (1)" in html
    assert "/console/silences/new?filter=" in html  # a silence link per firing alert


def test_html_escapes_labels_text_does_not(mailbox: SmtpServer) -> None:
    evil = alert(
        "HighCpuUsage",
        "<script>alert(1)</script>",
        description='<img src=x onerror="boom()"> & more',
    )
    notifier(mailbox).notify(group(evil))
    [mail] = mailbox.wait_for_mails(1)
    text, html = parts(mail.message)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;boom()&#34;&gt; &amp; more" in html
    assert "<script>alert(1)</script>" in text  # plain text is not HTML: no entities


def test_resolved_mail_reads_as_resolved(mailbox: SmtpServer) -> None:
    done = alert("DiskAlmostFull", "db1", status="resolved", summary="Disk / on db1 is 95% full")
    notifier(mailbox, send_resolved=True).notify(group(done))
    [mail] = mailbox.wait_for_mails(1)
    assert mail.message["Subject"].startswith("[RESOLVED] DiskAlmostFull")
    text, html = parts(mail.message)
    assert "Resolved (1)" in html and "Firing (" not in html
    assert "Resolved: 2026-11-22 12:00:00 UTC after 30m" in text


def test_send_resolved_defaults_to_false_like_alertmanager(mailbox: SmtpServer) -> None:
    mail_notifier = notifier(mailbox)
    assert mail_notifier.send_resolved is False
    done = alert("DiskAlmostFull", "db1", status="resolved")
    mail_notifier.notify(group(done))  # delivery is synchronous: nothing sent means nothing
    assert mailbox.delivered == []
    mail_notifier.notify(group(alert("DiskAlmostFull", "db2"), done))
    [mail] = mailbox.wait_for_mails(1)
    text, _ = parts(mail.message)
    assert "db2" in text and "db1" not in text and "RESOLVED" not in text


def test_status_change_mails_read_as_sentences(mailbox: SmtpServer) -> None:
    mail_notifier = notifier(mailbox, send_resolved=True)
    offline = alert("ServerOffline", "web1", summary="web1 has not been heard from")
    mail_notifier.notify(group(offline))
    mail_notifier.notify(group(dataclasses.replace(offline, status="resolved", ends_at=NOW)))
    first, second = mailbox.wait_for_mails(2)
    assert first.message["Subject"] == "[OFFLINE] web1 is offline"
    assert second.message["Subject"] == "[ONLINE] web1 is back online"
    assert "web1 is back online" in parts(second.message)[0]


def test_recipient_per_server_from_label(mailbox: SmtpServer) -> None:
    to = '{{ common_labels.owner_email | default("ops@example.com") }}'
    owned = alert("HighCpuUsage", "web1")
    owned = dataclasses.replace(owned, labels={**owned.labels, "owner_email": "web@example.com"})
    mail_notifier = notifier(mailbox, to=to)
    mail_notifier.notify(group(owned))
    mail_notifier.notify(group(alert("HighCpuUsage", "db1")))
    first, second = mailbox.wait_for_mails(2)
    assert first.rcpt_tos == ["web@example.com"] and first.message["To"] == "web@example.com"
    assert second.rcpt_tos == ["ops@example.com"]


def test_subject_template_cannot_inject_headers(mailbox: SmtpServer) -> None:
    sneaky = alert("HighCpuUsage", "web1\r\nBcc: victim@example.com")
    notifier(
        mailbox, headers={"Subject": "{{ common_labels.server }} needs help", "X-Team": "ops"}
    ).notify(group(sneaky))
    [mail] = mailbox.wait_for_mails(1)
    assert mail.message["Subject"] == "web1 Bcc: victim@example.com needs help"
    assert mail.message["Bcc"] is None and mail.message["X-Team"] == "ops"
    assert mail.rcpt_tos == ["ops@example.com"]


def test_undefined_template_variable_is_a_clear_permanent_error(mailbox: SmtpServer) -> None:
    with pytest.raises(NotifyError) as err:
        notifier(mailbox, to="{{ common_labels.owner_email }}").notify(sample_notification())
    assert err.value.reason == "template" and not err.value.retryable
    assert "owner_email" in str(err.value) and "to" in str(err.value)
    assert mailbox.delivered == []


def test_implicit_tls(tmp_path_factory: pytest.TempPathFactory, cert: SelfSignedCert) -> None:
    with smtp_server(
        tmp_path_factory.mktemp("smtps"),
        tls="implicit",
        username=USER,
        password=PASSWORD,
        cert=cert,
    ) as server:
        mail_notifier = notifier(server, tls="implicit")
        assert mail_notifier.tls == "implicit"
        mail_notifier.notify(sample_notification())
        [mail] = server.wait_for_mails(1)
        assert mail.tls and mail.authenticated_as == USER


def test_untrusted_certificate_is_a_tls_error(mailbox: SmtpServer) -> None:
    with pytest.raises(NotifyError) as err:
        notifier(mailbox, tls_config={}).notify(sample_notification())  # system CAs only
    assert (err.value.reason, err.value.retryable) == ("tls", False)
    assert mailbox.delivered == []


def test_port_465_means_implicit_tls_and_require_tls_false_means_plain() -> None:
    def tls_of(**cfg: Any) -> str:
        [n] = build_notifiers(
            {
                "name": "m",
                "email_configs": [{"to": "a@example.com", "from": "b@example.com", **cfg}],
            },
            path="r",
            global_config={},
        )
        assert isinstance(n, EmailNotifier)
        return n.tls

    assert tls_of(smarthost="mail.example.com:465") == "implicit"
    assert tls_of(smarthost="mail.example.com:587") == "starttls"
    assert tls_of(smarthost="mail.example.com:25", require_tls=False) == "none"


def test_a_trickling_smtp_server_is_cut_at_the_total_deadline() -> None:
    """A server that sends its greeting one byte every 1.5 s never trips smtplib's
    per-read timeout (3 s here); the send still ends, as a retryable timeout, at 3 s."""
    import socket
    import threading
    import time

    from tests.peers.util import free_port

    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            for byte in b"220 slow.example ESMTP " + b"x" * 100 + b"\r\n":
                if stop.wait(1.5):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    [mail] = build_notifiers(
        {
            "name": "mail",
            "email_configs": [
                {
                    "to": "ops@example.com",
                    "smarthost": f"127.0.0.1:{port}",
                    "require_tls": False,
                    "timeout": "3s",
                }
            ],
        },
        path="receivers[0]",
        global_config={"smtp_from": "alerts@example.com"},
    )
    started = time.monotonic()
    try:
        with pytest.raises(NotifyError) as err:
            mail.notify(group(alert("DiskFull", "web-1")))
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 6
    assert err.value.reason == "timeout" and err.value.retryable
    assert "total deadline" in str(err.value)


def test_every_alert_names_its_trace_id(mailbox: SmtpServer) -> None:
    from alert_router.trace import derive

    given = alert("DiskAlmostFull", "web1", trace_id="rules-7f3a")  # the rule engine sets it
    derived = alert("HighCpuUsage", "db1")  # any other sender: derived from labels and start
    notifier(mailbox).notify(group(given, derived, common={}))
    [mail] = mailbox.wait_for_mails(1)
    text, html = parts(mail.message)
    expected = derive(derived.labels, derived.starts_at.timestamp())
    assert "Trace:    rules-7f3a" in text and f"Trace:    {expected}" in text
    assert "rules-7f3a" in html and expected in html
    assert html.count("rules-7f3a") == 1  # the annotation is shown once, as the trace row
