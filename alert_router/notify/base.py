"""The notifier contract: template data, the Notifier protocol, errors, and the v4 webhook payload.

Error tree::

    Exception
    ├── NotifyError            a delivery failed; says whether a retry may help
    └── ValueError
        └── ConfigError            the shared stacksense_common.config.ConfigError
            └── ReceiverConfigError  a receiver's config is wrong; names the key path
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from alert_router.errors import ConfigError

# Go's zero time, which Alertmanager writes as endsAt while an alert fires.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class AlertData:
    """One alert as templates and payloads see it."""

    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str


@dataclass(frozen=True)
class NotificationData:
    """Alertmanager's template data shape, one shape for every template."""

    receiver: str
    status: str
    alerts: list[AlertData]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    group_key: str
    truncated_alerts: int = 0
    # Set for routes with `diagnostics: true` (alert_router.diagnostics.fetch); None otherwise.
    diagnostics: dict[str, Any] | None = None

    @property
    def firing(self) -> list[AlertData]:
        """The alerts still firing."""
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[AlertData]:
        """The alerts that have resolved."""
        return [a for a in self.alerts if a.status == "resolved"]


class NotifyError(Exception):
    """A delivery failed; `retryable` says whether the outbox should try again."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"NotifyError({str(self)!r}, retryable={self.retryable}, reason={self.reason!r}, "
            f"retry_after={self.retry_after!r})"
        )


class ReceiverConfigError(ConfigError):
    """A receiver config is invalid; the message starts with the key path."""


@runtime_checkable
class Notifier(Protocol):
    """Delivers one notification to one integration; never retries by itself."""

    kind: str
    send_resolved: bool

    def notify(self, data: NotificationData) -> None:
        """Send `data`; raise NotifyError on failure."""
        ...

    def redacted(self) -> dict[str, Any]:
        """The effective config with every secret shown as "<secret>"."""
        ...


def format_time(value: datetime | None) -> str:
    """RFC 3339 in UTC as Go writes it (fraction only when non-zero, Go's zero time for None)."""
    if value is None:
        return GO_ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def alert_payload(alert: AlertData) -> dict[str, Any]:
    """One alert in Alertmanager's webhook (v4) form."""
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(data: NotificationData, *, max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager's version 4 webhook payload, exact field names; max_alerts 0 = all."""
    alerts = data.alerts
    truncated = data.truncated_alerts
    if max_alerts > 0 and len(alerts) > max_alerts:
        truncated += len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    payload = {
        "receiver": data.receiver,
        "status": data.status,
        "alerts": [alert_payload(a) for a in alerts],
        "groupLabels": dict(data.group_labels),
        "commonLabels": dict(data.common_labels),
        "commonAnnotations": dict(data.common_annotations),
        "externalURL": data.external_url,
        "version": "4",
        "groupKey": data.group_key,
        "truncatedAlerts": truncated,
    }
    if data.diagnostics is not None:
        # Only for routes that enable it. An extra top-level key: Alertmanager's consumers
        # decode the payload with Go's encoding/json, which ignores unknown fields.
        payload["diagnostics"] = data.diagnostics
    return payload


@dataclass
class Secrets:
    """The secret strings one notifier holds, to scrub from any text it emits."""

    values: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, *values: str | None, urls: Iterable[str] = ()) -> Secrets:
        """Secrets holding `values` and each secret URL in `urls` (with its telling parts)."""
        secrets = cls()
        for url in urls:
            secrets.add_url(url)
        for value in values:
            secrets.add(value)
        return secrets

    def add(self, value: str | None) -> None:
        """A secret and its percent-encoded forms (as it appears inside URLs and bodies)."""
        if not value or len(value) < 6:
            return
        for form in (value, quote(value, safe=""), quote(value)):
            if form not in self.values:
                self.values.append(form)

    def add_url(self, url: str) -> None:
        """A secret URL and the parts of it that give it away (path, token, query values,
        credentials before the @, which the client also sends as a Basic-auth header)."""
        parts = urlsplit(url)
        self.add(url)
        self.add(parts.path + (f"?{parts.query}" if parts.query else ""))
        self.add(parts.path)
        self.add(parts.path.rstrip("/").rpartition("/")[2])
        if parts.password:
            self.add(parts.password)
            self.add(unquote(parts.password))
            userinfo = parts.netloc.rpartition("@")[0]
            self.add(userinfo)
            self.add(unquote(userinfo))
        for _, value in parse_qsl(parts.query):
            self.add(value)

    def scrub(self, text: str) -> str:
        """`text` with every known secret replaced by "<secret>", also when base64-encoded.

        A Basic-auth header is base64("user:password"); a peer that echoes it (many answer
        a 400 with the request's headers) must not put the password in an error, the log
        or the history: every base64-looking word that decodes to text holding a secret
        is replaced too.
        """
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "<secret>")
        if self.values:
            text = _BASE64_WORD.sub(self._encoded_secret, text)
        return text

    def _encoded_secret(self, match: re.Match[str]) -> str:
        word = match.group(0)
        padded = word.rstrip("=") + "=" * (-len(word.rstrip("=")) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(padded).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
            if any(value in decoded for value in self.values):
                return "<secret>"
        return word


# A base64 (or base64url) word long enough to hold a 6-character secret.
_BASE64_WORD = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
