"""A real SMTP server (aiosmtpd) on loopback: plain, STARTTLS or implicit TLS, with AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.peers.util import free_port, wait_for


@dataclass(frozen=True)
class SelfSignedCert:
    """A self-signed certificate for localhost / 127.0.0.1 (also its own CA)."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, tmp: Path) -> SelfSignedCert:
        cert, key = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@dataclass
class Delivered:
    """One mail as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: str | None
    tls: bool


@dataclass
class _Handler:
    reject_rcpt: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    delivered: list[Delivered] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.reject_rcpt:
            return self.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        login = session.auth_data
        who = login.login.decode() if isinstance(login, LoginPassword) else None
        with self.lock:
            self.delivered.append(
                Delivered(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=msg,
                    authenticated_as=who,
                    tls=session.ssl is not None,
                )
            )
        return "250 Message accepted for delivery"


class _SMTP(SMTP):
    """aiosmtpd's SMTP that can allow AUTH without STARTTLS, and knows implicit TLS is TLS."""

    def __init__(
        self, *args: Any, auth_without_starttls: bool, implicit_tls: bool, **kwargs: Any
    ) -> None:
        # constructed with auth_require_tls=True so aiosmtpd does not warn on every connection
        super().__init__(*args, **kwargs)
        self._auth_require_tls = not auth_without_starttls
        self._implicit_tls = implicit_tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._implicit_tls and self.session is not None:
            self.session.ssl = {"cipher": transport.get_extra_info("cipher")}


class _Controller(Controller):
    implicit_tls = False
    auth_without_starttls = False

    def factory(self) -> SMTP:
        return _SMTP(
            self.handler,
            auth_without_starttls=self.auth_without_starttls,
            implicit_tls=self.implicit_tls,
            **self.SMTP_kwargs,
        )


@dataclass
class SmtpServer:
    """A running SMTP server and what it has received."""

    host: str
    port: int
    tls: str
    cert: SelfSignedCert | None
    username: str | None
    password: str | None
    handler: _Handler

    @property
    def smarthost(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def delivered(self) -> list[Delivered]:
        with self.handler.lock:
            return list(self.handler.delivered)

    def wait_for_mails(self, count: int, timeout: float = 10.0) -> list[Delivered]:
        """Poll until at least `count` mails arrived."""

        def enough() -> list[Delivered] | None:
            mails = self.delivered
            return mails if len(mails) >= count else None

        return wait_for(enough, timeout=timeout, what=f"{count} mail(s)")

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.delivered.clear()


@contextmanager
def smtp_server(
    tmp: Path,
    *,
    tls: str = "starttls",
    username: str | None = None,
    password: str | None = None,
    cert: SelfSignedCert | None = None,
    reject_rcpt: dict[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """Start aiosmtpd on 127.0.0.1: tls is "starttls" (required), "implicit" or "none"."""
    if tls not in ("starttls", "implicit", "none"):
        raise ValueError(f"tls must be starttls, implicit or none, got {tls!r}")
    if tls != "none" and cert is None:
        cert = SelfSignedCert.create(tmp)
    handler = _Handler(reject_rcpt=dict(reject_rcpt or {}))

    def authenticator(
        server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kwargs: dict[str, Any] = {}
    if username is not None:
        kwargs.update(authenticator=authenticator, auth_required=True)
    if tls == "starttls":
        assert cert is not None
        kwargs.update(tls_context=cert.server_context(), require_starttls=True)
    elif tls == "implicit":
        assert cert is not None
        kwargs.update(ssl_context=cert.server_context())
    port = free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.implicit_tls = tls == "implicit"
    # AUTH is fine on an implicit-TLS socket; on plain "none" tests want to try it anyway
    controller.auth_without_starttls = tls != "starttls"
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, tls, cert, username, password, handler)
    finally:
        controller.stop()
