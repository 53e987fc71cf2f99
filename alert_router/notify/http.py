"""One HTTP POST for every HTTP notifier, with the shared status-code table and safe errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from alert_router.notify.base import NotifyError, ReceiverConfigError, Secrets
from alert_router.notify.config import Secret, Section
from alert_router.notify.deadline import Watchdog
from stacksense_common import retry_after

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
_HTTP_CONFIG_KEYS = {"authorization", "basic_auth", "tls_config", "proxy_url", "follow_redirects"}
_BODY_SNIPPET = 200


class _HideRequestUrls(logging.Filter):
    """urllib3 logs request URLs at DEBUG; a Slack or webhook URL path is a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if isinstance(record.args, tuple) and record.args:
            args = list(record.args)
            if '"%s %s %s"' in msg and len(args) >= 5:
                args[4] = "<path hidden>"  # '%s://%s:%s "%s %s %s" %s %s'
            elif msg.startswith(("Redirecting", "Retry:")):
                args = ["<url hidden>" for _ in args]
            record.args = tuple(args)
        return True


# Installed once at import: anyone who turns on DEBUG logging still sees no secret URL.
logging.getLogger("urllib3.connectionpool").addFilter(_HideRequestUrls())

# The connections one send uses, per sending thread: the deadline watchdog shuts them down.
_sending = threading.local()


def _track(conn: Any) -> Any:
    watchdog: Watchdog | None = getattr(_sending, "watchdog", None)
    return conn if watchdog is None else watchdog.watch(conn)


class _TrackedHTTPPool(urllib3.HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))


class _TrackedHTTPSPool(urllib3.HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))


_TRACKED_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose pools report the connection each send uses.

    requests' timeout applies to each socket operation, so a peer that trickles one byte
    every few seconds never trips it; post_json shuts the connection down at a wall-clock
    deadline instead (connect to last byte).
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS  # type: ignore[assignment]

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


def deadline_session(session: requests.Session) -> requests.Session:
    """Mount DeadlineAdapter on `session` (once)."""
    if not isinstance(session.get_adapter("http://x"), DeadlineAdapter):
        session.mount("http://", DeadlineAdapter())
        session.mount("https://", DeadlineAdapter())
    return session


@dataclass
class HttpOptions:
    """The parts of Alertmanager's `http_config` we support, plus the request timeout."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    authorization: tuple[str, Secret] | None = None  # (type, credentials)
    basic_auth: tuple[str, Secret] | None = None
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    proxy_url: Secret | None = None  # may carry user:password
    follow_redirects: bool = True

    def secrets(self) -> list[str]:
        found = [s.reveal() for s in (self.proxy_url,) if s]
        if self.authorization:
            found.append(self.authorization[1].reveal())
        if self.basic_auth:
            found.append(self.basic_auth[1].reveal())
        return found

    def redacted(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "timeout_seconds": self.timeout,
            "follow_redirects": self.follow_redirects,
        }
        if self.authorization:
            out["authorization"] = {"type": self.authorization[0], "credentials": "<secret>"}
        if self.basic_auth:
            out["basic_auth"] = {"username": self.basic_auth[0], "password": "<secret>"}
        if self.verify is not True:
            out["tls_config"] = {"verify": self.verify}
        if self.proxy_url:
            out["proxy_url"] = "<secret>"
        return out


def parse_http_options(section: Section, global_config: Mapping[str, Any]) -> HttpOptions:
    """`timeout` and `http_config` of a notifier section (else `global.http_config`)."""
    options = HttpOptions(timeout=section.duration("timeout", DEFAULT_TIMEOUT_SECONDS))
    if section.has("http_config") or not global_config.get("http_config"):
        http = section.section("http_config", _HTTP_CONFIG_KEYS)
    else:
        http = Section(global_config["http_config"], "global.http_config", _HTTP_CONFIG_KEYS)
    if http.has("authorization"):
        auth = http.section("authorization", {"type", "credentials", "credentials_file"})
        cred = auth.secret("credentials", file_key="credentials_file", required=True)
        assert cred is not None
        options.authorization = (auth.string("type", "Bearer") or "Bearer", cred)
    if http.has("basic_auth"):
        basic = http.section("basic_auth", {"username", "password", "password_file"})
        password = basic.secret("password", file_key="password_file", required=True)
        assert password is not None
        options.basic_auth = (basic.string("username", required=True) or "", password)
    if options.authorization and options.basic_auth:
        raise_config(http.key_path("basic_auth"), "cannot be combined with authorization")
    if http.has("tls_config"):
        tls = http.section(
            "tls_config", {"ca_file", "cert_file", "key_file", "insecure_skip_verify"}
        )
        ca_file = tls.file_path("ca_file")
        if tls.boolean("insecure_skip_verify", False):
            options.verify = False
        elif ca_file:
            options.verify = ca_file
        cert, key = tls.file_path("cert_file"), tls.file_path("key_file")
        if bool(cert) != bool(key):
            raise_config(tls.key_path("cert_file"), "cert_file and key_file go together")
        if cert and key:
            options.cert = (cert, key)
    if http.has("proxy_url"):
        options.proxy_url = Secret(http.string("proxy_url") or "")
    options.follow_redirects = http.boolean("follow_redirects", True)
    return options


def raise_config(path: str, message: str) -> None:
    """Raise a ReceiverConfigError for `path`."""
    raise ReceiverConfigError(f"{path}: {message}")


def secret_url(
    section: Section, key: str, file_key: str, *, fallback: Secret | None = None
) -> Secret:
    """A required URL that is a secret (Slack and webhook URLs carry their token)."""
    value = section.secret(key, file_key=file_key, fallback=fallback, required=True)
    assert value is not None
    parts = urlsplit(value.reveal())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # never echo the value: it is a secret
        raise_config(
            section.key_path(key if section.has(key) else file_key),
            "must be an http:// or https:// URL",
        )
    return value


def safe_target(url: str) -> str:
    """scheme://host[:port] of a URL: what errors and logs may show of a secret URL."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if unreadable."""
    return retry_after.parse(value)


def classify_status(
    kind: str, status: int, body: str, retry_after: str | None, target: str
) -> NotifyError:
    """The shared table: 429 and 5xx retryable, other 4xx (and odd codes) not."""
    snippet = " ".join(body.split())[:_BODY_SNIPPET]
    detail = f"{kind}: {target} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    if status == 429:
        return NotifyError(
            detail,
            retryable=True,
            reason="rate_limited",
            retry_after=retry_after_seconds(retry_after),
        )
    if status >= 500:
        return NotifyError(
            detail, retryable=True, reason="http_5xx", retry_after=retry_after_seconds(retry_after)
        )
    if 400 <= status < 500:
        return NotifyError(detail, retryable=False, reason="http_4xx")
    return NotifyError(detail, retryable=False, reason="http_unexpected")


def post_json(
    session: requests.Session,
    url: Secret,
    payload: Any,
    *,
    kind: str,
    options: HttpOptions,
    secrets: Secrets,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """POST `payload` as JSON; return a 2xx response or raise a scrubbed NotifyError."""
    target = safe_target(url.reveal())
    all_headers = {"Content-Type": "application/json", "User-Agent": "StackSense-Router/0.1"}
    all_headers.update(headers or {})
    if options.authorization:
        kind_, cred = options.authorization
        all_headers["Authorization"] = f"{kind_} {cred.reveal()}"
    auth = (options.basic_auth[0], options.basic_auth[1].reveal()) if options.basic_auth else None
    proxies = None
    if options.proxy_url:
        proxies = {"http": options.proxy_url.reveal(), "https": options.proxy_url.reveal()}
    deadline_session(session)
    watchdog = Watchdog(options.timeout)
    _sending.watchdog = watchdog
    try:
        with watchdog:
            resp = session.post(
                url.reveal(),
                json=payload,
                headers=all_headers,
                auth=auth,
                timeout=options.timeout,
                verify=options.verify,
                cert=options.cert,
                proxies=proxies,
                allow_redirects=options.follow_redirects,
            )
    except requests.exceptions.RequestException as exc:
        if not watchdog.fired:
            _raise_request_error(exc, kind, target, options)
        raise NotifyError(
            f"{kind}: {target} did not answer within {options.timeout:g}s (total deadline)",
            retryable=True,
            reason="timeout",
        ) from None
    finally:
        _sending.watchdog = None
    if 200 <= resp.status_code < 300:
        log.debug("%s: %s accepted the notification (HTTP %d)", kind, target, resp.status_code)
        return resp
    error = classify_status(
        kind, resp.status_code, secrets.scrub(resp.text), resp.headers.get("Retry-After"), target
    )
    error.args = (secrets.scrub(str(error)),)
    raise error


def _raise_request_error(
    exc: requests.exceptions.RequestException, kind: str, target: str, options: HttpOptions
) -> None:
    """The scrubbed NotifyError for a failed request (never a URL)."""
    if isinstance(exc, requests.exceptions.SSLError):
        # certificate and handshake problems need a person, not a retry
        raise NotifyError(
            f"{kind}: TLS error talking to {target}: {_cause(exc)}", retryable=False, reason="tls"
        ) from None
    if isinstance(exc, requests.exceptions.Timeout):
        raise NotifyError(
            f"{kind}: {target} did not answer within {options.timeout:g}s",
            retryable=True,
            reason="timeout",
        ) from None
    if isinstance(exc, requests.exceptions.ConnectionError):
        raise NotifyError(
            f"{kind}: cannot connect to {target}: {_cause(exc)}",
            retryable=True,
            reason="connection",
        ) from None
    raise NotifyError(
        f"{kind}: request to {target} failed: {type(exc).__name__}",
        retryable=False,
        reason="request",
    ) from None


def _cause(exc: BaseException) -> str:
    """The innermost OS-level reason (e.g. "Connection refused"), never a URL."""
    seen: set[int] = set()
    current: BaseException | None = exc
    reason = type(exc).__name__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        elif type(current).__name__ in ("SSLCertVerificationError",):
            reason = "certificate verify failed"
        current = current.__cause__ or current.__context__ or _first_arg_exc(current)
    return reason


def _first_arg_exc(exc: BaseException) -> BaseException | None:
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, BaseException):
            return arg
        reason = getattr(arg, "reason", None)
        if isinstance(reason, BaseException):
            return reason
    return None
