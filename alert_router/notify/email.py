"""Email over SMTP: STARTTLS or implicit TLS, AUTH, multipart text + HTML from jinja2 templates."""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

from alert_router.notify.base import NotificationData, NotifyError, ReceiverConfigError, Secrets
from alert_router.notify.config import Secret, Section, global_secret
from alert_router.notify.deadline import Watchdog
from alert_router.notify.resolved import only_what_to_send
from alert_router.notify.templating import TemplateRef, render_or_fail

log = logging.getLogger(__name__)

KEYS = {
    "to",
    "from",
    "smarthost",
    "hello",
    "auth_username",
    "auth_password",
    "auth_password_file",
    "auth_secret",
    "auth_identity",
    "require_tls",
    "tls",
    "tls_config",
    "headers",
    "html",
    "text",
    "send_resolved",
    "timeout",
}
TLS_KEYS = {"insecure_skip_verify", "ca_file", "server_name"}
DEFAULT_TIMEOUT_SECONDS = 15.0
IMPLICIT_TLS_PORT = 465
# Headers the notifier writes itself; config may not override them.
OWN_HEADERS = {"date", "message-id", "mime-version", "content-type"}


def _smarthost(value: str, path: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ReceiverConfigError(f"{path}: must be host:port, got {value!r}")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(value: str) -> str:
    # Header values must not carry line breaks (header injection); label values may.
    return " ".join(value.split())


class EmailNotifier:
    """Sends one multipart/alternative mail per notification through an SMTP smarthost."""

    kind = "email"

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        path: str,
        global_config: Mapping[str, Any],
        session: object | None = None,
    ) -> None:
        section = Section(raw, path, KEYS)
        g = global_config
        self.to = TemplateRef(
            section.string("to", required=True) or "", path=section.key_path("to")
        )
        sender = section.string("from", _str_or_none(g.get("smtp_from")))
        if not sender:
            raise ReceiverConfigError(
                f"{section.key_path('from')}: required (or set global.smtp_from)"
            )
        self.sender = TemplateRef(sender, path=section.key_path("from"))
        smarthost = section.string("smarthost", _str_or_none(g.get("smtp_smarthost")))
        if not smarthost:
            raise ReceiverConfigError(
                f"{section.key_path('smarthost')}: required (or set global.smtp_smarthost)"
            )
        self.host, self.port = _smarthost(smarthost, section.key_path("smarthost"))
        self.hello = section.string("hello", _str_or_none(g.get("smtp_hello")) or "localhost")
        self.username = section.string("auth_username", _str_or_none(g.get("smtp_auth_username")))
        self.identity = section.string("auth_identity", _str_or_none(g.get("smtp_auth_identity")))
        # auth_secret is Alertmanager's CRAM-MD5 secret; smtplib negotiates the mechanism
        # itself, so it is simply the password when no auth_password is given.
        self.password: Secret | None = section.secret(
            "auth_password",
            file_key="auth_password_file",
            fallback=section.secret("auth_secret")
            or global_secret(g, "smtp_auth_password", "smtp_auth_password_file")
            or global_secret(g, "smtp_auth_secret"),
        )
        if self.password and not self.username:
            raise ReceiverConfigError(
                f"{section.key_path('auth_username')}: required when auth_password is set"
            )
        require_tls = g.get("smtp_require_tls", True)
        self.require_tls = section.boolean("require_tls", bool(require_tls))
        default_tls = (
            "implicit"
            if self.port == IMPLICIT_TLS_PORT
            else "starttls"
            if self.require_tls
            else "none"
        )
        self.tls = section.choice("tls", ("implicit", "starttls", "none"), default_tls)
        tls_config = section.section("tls_config", TLS_KEYS)
        self.ca_file = tls_config.file_path("ca_file")
        self.insecure_skip_verify = tls_config.boolean("insecure_skip_verify", False)
        self.server_name = tls_config.string("server_name")
        self.timeout = section.duration("timeout", DEFAULT_TIMEOUT_SECONDS)
        self.send_resolved = section.boolean("send_resolved", False)
        self.headers = {
            name: TemplateRef(value, path=f"{section.key_path('headers')}.{name}")
            for name, value in section.string_map("headers").items()
        }
        for name in self.headers:
            if name.lower() in OWN_HEADERS:
                raise ReceiverConfigError(
                    f"{section.key_path('headers')}.{name}: set by the "
                    "notifier, cannot be overridden"
                )
        if not any(n.lower() == "subject" for n in self.headers):
            self.headers["Subject"] = TemplateRef("email_subject.j2", path="(default subject)")
        html = section.string("html", "email.html.j2")
        text = section.string("text", "email.txt.j2")
        self.html = (
            TemplateRef(html, path=section.key_path("html"), flavor="html") if html else None
        )
        self.text = TemplateRef(text, path=section.key_path("text")) if text else None
        if self.html is None and self.text is None:
            raise ReceiverConfigError(
                f"{section.key_path('html')}: html and text cannot both be empty"
            )
        self.secrets = Secrets()
        if self.password:
            self.secrets.add(self.password.reveal())

    @property
    def target(self) -> str:
        """host:port of the smarthost, for errors and logs."""
        return f"{self.host}:{self.port}"

    def message(self, data: NotificationData) -> tuple[EmailMessage, str, list[str]]:
        """The mail for `data`, its envelope sender and its recipients."""

        def render(ref: TemplateRef, what: str) -> str:
            return render_or_fail(ref, data, kind=self.kind, what=what)

        to = _one_line(render(self.to, "to"))
        recipients = [addr for _, addr in getaddresses([to]) if "@" in addr]
        if not recipients:
            raise NotifyError(
                f"email: 'to' rendered to no address ({to[:80]!r})",
                retryable=False,
                reason="template",
            )
        sender = _one_line(render(self.sender, "from"))
        envelope_from = next((a for _, a in getaddresses([sender]) if a), sender)
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        for name, ref in self.headers.items():
            value = _one_line(render(ref, f"headers.{name}"))
            canonical = "-".join(part.capitalize() for part in name.split("-"))
            del msg[canonical]
            msg[canonical] = value
        domain = envelope_from.rpartition("@")[2] or self.hello
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=domain)
        if self.text is not None:
            msg.set_content(render(self.text, "text"))
        if self.html is not None:
            html = render(self.html, "html")
            if self.text is not None:
                msg.add_alternative(html, subtype="html")
            else:
                msg.set_content(html, subtype="html")
        return msg, envelope_from, recipients

    def notify(self, data: NotificationData) -> None:
        """Deliver one mail; raise NotifyError (scrubbed of secrets) on failure."""
        to_send = only_what_to_send(data, self.send_resolved)
        if to_send is None:
            return
        msg, envelope_from, recipients = self.message(to_send)
        try:
            self._send(msg, envelope_from, recipients)
        except NotifyError as exc:
            exc.args = (self.secrets.scrub(str(exc)),)
            raise
        log.info(
            "email: delivered %s to %d recipient(s) via %s",
            msg["Message-ID"],
            len(recipients),
            self.target,
        )

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self, watchdog: Watchdog | None = None) -> smtplib.SMTP:
        client = (
            smtplib.SMTP_SSL(
                local_hostname=self.hello, timeout=self.timeout, context=self._tls_context()
            )
            if self.tls == "implicit"
            else smtplib.SMTP(local_hostname=self.hello, timeout=self.timeout)
        )
        # smtplib checks the certificate against _host, which only its constructor sets
        setattr(client, "_host", self.server_name or self.host)  # noqa: B010 - not in stubs
        if watchdog is not None:
            watchdog.watch(client)  # before connect: the greeting is read there
        client.connect(self.host, self.port)
        return client

    def _send(self, msg: EmailMessage, envelope_from: str, recipients: list[str]) -> None:
        # smtplib's timeout is per socket operation; the watchdog bounds the whole send
        # (a server that trickles its replies would otherwise hold this sender for good).
        with Watchdog(self.timeout) as watchdog:
            try:
                self._send_watched(msg, envelope_from, recipients, watchdog)
            except NotifyError:
                if watchdog.fired:
                    raise NotifyError(
                        f"email: {self.target} did not finish within "
                        f"{self.timeout:g}s (total deadline)",
                        retryable=True,
                        reason="timeout",
                    ) from None
                raise

    def _send_watched(
        self, msg: EmailMessage, envelope_from: str, recipients: list[str], watchdog: Watchdog
    ) -> None:
        try:
            client = self._connect(watchdog)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(exc, "connect") from None
        try:
            client.ehlo()
            encrypted = self.tls == "implicit"
            if self.tls == "starttls":
                if not client.has_extn("starttls"):
                    raise NotifyError(
                        f"email: {self.target} does not offer STARTTLS (require_tls is on)",
                        retryable=False,
                        reason="tls",
                    )
                client.starttls(context=self._tls_context())
                client.ehlo()
                encrypted = True
            if self.username and self.password:
                self._login(client, encrypted)
            refused = client.send_message(msg, envelope_from, recipients)  # CRLF line ends
            if refused:
                raise NotifyError(
                    f"email: {self.target} accepted the mail for "
                    f"{len(recipients) - len(refused)} of {len(recipients)} recipients; refused "
                    + ", ".join(f"{r} ({c})" for r, (c, _) in sorted(refused.items())),
                    retryable=False,
                    reason="smtp_rejected",
                )
        except NotifyError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(exc, "send") from None
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _login(self, client: smtplib.SMTP, encrypted: bool) -> None:
        assert self.username and self.password
        if not client.has_extn("auth"):
            # As Alertmanager does: a server that offers no AUTH gets the mail unauthenticated.
            log.warning("email: %s offers no AUTH; sending without authentication", self.target)
            return
        if not encrypted and not _is_loopback(self.host):
            raise NotifyError(
                f"email: refusing to send credentials to {self.target} over an "
                "unencrypted connection (enable require_tls or TLS)",
                retryable=False,
                reason="tls",
            )
        password = self.password.reveal()
        if self.identity and "plain" in client.esmtp_features.get("auth", "").lower().split():
            identity, user = self.identity, self.username
            client.auth("PLAIN", lambda challenge=None: f"{identity}\0{user}\0{password}")
        else:
            client.login(self.username, password)

    def _error(self, exc: BaseException, stage: str) -> NotifyError:
        where = f"email: {self.target}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return NotifyError(
                f"{where}: authentication failed for {self.username!r} ({exc.smtp_code})",
                retryable=False,
                reason="auth",
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            temporary = all(400 <= c < 500 for c in codes)
            listing = ", ".join(f"{r} ({c})" for r, (c, _) in sorted(exc.recipients.items()))
            return NotifyError(
                f"{where}: recipients refused: {listing}",
                retryable=temporary,
                reason="smtp_temporary" if temporary else "smtp_rejected",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, TimeoutError
        ):
            # smtplib turns a read timeout into "Connection unexpectedly closed"
            return NotifyError(
                f"{where}: no answer within {self.timeout:g}s during {stage}",
                retryable=True,
                reason="timeout",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return NotifyError(
                f"{where}: server closed the connection during {stage}",
                retryable=True,
                reason="connection",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            temporary = 400 <= exc.smtp_code < 500
            return NotifyError(
                f"{where}: {stage} failed: {exc.smtp_code} {_one_line(text)[:200]}",
                retryable=temporary,
                reason="smtp_temporary" if temporary else "smtp_rejected",
            )
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return NotifyError(
                f"{where}: TLS error: {getattr(exc, 'reason', None) or exc}",
                retryable=False,
                reason="tls",
            )
        if isinstance(exc, TimeoutError | socket.timeout):
            return NotifyError(
                f"{where}: timed out after {self.timeout:g}s during {stage}",
                retryable=True,
                reason="timeout",
            )
        if isinstance(exc, OSError):
            return NotifyError(
                f"{where}: cannot {stage}: {exc.strerror or type(exc).__name__}",
                retryable=True,
                reason="connection",
            )
        return NotifyError(
            f"{where}: {stage} failed: {type(exc).__name__}", retryable=True, reason="smtp"
        )

    def redacted(self) -> dict[str, Any]:
        """Effective config with secrets as "<secret>"."""
        return {
            "to": self.to.spec,
            "from": self.sender.spec,
            "smarthost": self.target,
            "hello": self.hello,
            "auth_username": self.username,
            "auth_password": "<secret>" if self.password else None,
            "auth_identity": self.identity,
            "require_tls": self.require_tls,
            "tls": self.tls,
            "tls_config": {
                "ca_file": self.ca_file,
                "server_name": self.server_name,
                "insecure_skip_verify": self.insecure_skip_verify,
            },
            "headers": {k: v.spec for k, v in self.headers.items()},
            "html": self.html.spec if self.html else "",
            "text": self.text.spec if self.text else "",
            "send_resolved": self.send_resolved,
            "timeout_seconds": self.timeout,
        }

    def __repr__(self) -> str:
        return f"EmailNotifier(smarthost={self.target!r}, tls={self.tls!r})"


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
