"""The operations endpoints, one meaning in every service: /-/healthy, /-/ready, /-/reload.

No HTTP framework here: each service's server calls `Ops` and writes the answer its own
way (the exporter and the rule engine as text, the router wraps errors in its JSON error
body). The semantics follow Prometheus and Alertmanager, so probes, scripts and people
that know those know these:

- `GET|HEAD /-/healthy`: the process serves. Always 200 "<Service> is Healthy.".
- `GET|HEAD /-/ready`: the service can do its job now (the service says what that needs).
  200 "<Service> is Ready." or 503 naming the reason.
- `POST|PUT /-/reload`: re-read the configuration; the old one stays on any error.
  200 on success; 500 "failed to reload config: <what is wrong>"; 405 for other methods.

Who may reload (one rule, the router's write rule): `Authorization: Bearer <token>` with
one of the service's write tokens. A service with no write token configured accepts a
reload from loopback clients only, and not from a web page: a request with an `Origin`
header (browsers send one with every cross-site POST, form posts included; curl, scripts
and config reloaders do not) is refused, so a page open in a browser on the same machine
cannot reload. A service whose token source is configured but unreadable or empty refuses
every reload (never open by accident). Refusals are 401 with `WWW-Authenticate: Bearer`.

The reload outcome is published as `stacksense_<service>_config_last_reload_successful`
and `stacksense_<service>_config_last_reload_success_timestamp_seconds` (Prometheus's
`prometheus_config_last_reload_*` pair).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from stacksense_common.secret import Secret

log = logging.getLogger(__name__)

HEALTHY = "/-/healthy"
READY = "/-/ready"
RELOAD = "/-/reload"
RELOAD_METHODS = ("POST", "PUT")
READ_METHODS = ("GET", "HEAD")
TEXT = "text/plain; charset=utf-8"

NEEDS_TOKEN = "reload needs a valid 'Authorization: Bearer <token>' header"
LOOPBACK_ONLY = "reload is allowed from loopback clients only: no write token is configured"
FROM_A_PAGE = "reload from a web page (Origin header) needs a write token, and none is configured"


@dataclass(frozen=True, slots=True)
class OpsAnswer:
    """What to answer: a status, one line of text, extra headers."""

    status: int
    text: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def message(self) -> str:
        """The text without its trailing newline (for a JSON error body)."""
        return self.text.rstrip("\n")


def is_loopback(host: str) -> bool:
    """Whether a client address is loopback (IPv4, IPv6, or IPv4-mapped IPv6)."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool((mapped or addr).is_loopback)


def bearer_token_valid(header: str | None, tokens: tuple[str | Secret, ...]) -> bool:
    """Whether an Authorization header carries one of `tokens` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer ") :].strip().encode()
    ok = False
    for token in tokens:  # every token compared, so the time does not tell which matched
        value = token.reveal() if isinstance(token, Secret) else token
        ok |= bool(value) and hmac.compare_digest(given, value.encode())
    return ok


def tokens_from_file(path: Path | None) -> tuple[str, ...] | None:
    """The write tokens in `path` (one a line, `#` comments), read now so rotation needs
    no restart. None without a file (loopback rule); () when it cannot be read (refuse)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.error(
            "token file %s unreadable (%s); refusing the request",
            path,
            getattr(exc, "strerror", None) or type(exc).__name__,
        )
        return ()
    return tuple(t.strip() for t in text.splitlines() if t.strip() and not t.startswith("#"))


def write_refusal(
    tokens: tuple[str | Secret, ...] | None,
    authorization: str | None,
    client_host: str,
    origin: str | None,
) -> str | None:
    """Why a write (a reload) is refused, or None when it is allowed (see the module doc)."""
    if tokens is None:
        if not is_loopback(client_host):
            return LOOPBACK_ONLY
        return None if origin is None else FROM_A_PAGE
    return None if bearer_token_valid(authorization, tokens) else NEEDS_TOKEN


def one_line(exc: BaseException) -> str:
    """An exception as one line (a reload error is one line of the answer)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class ReloadGauges:
    """The reload outcome gauges under the one naming scheme.

    The multiprocess modes matter only under prometheus_client's multiprocess mode (the
    router's gunicorn workers): the latest outcome and the newest success win.
    """

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        prefix = f"stacksense_{service}_config_last_reload"
        self.ok = Gauge(
            f"{prefix}_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.timestamp = Gauge(
            f"{prefix}_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=registry,
            multiprocess_mode="max",
        )

    def succeeded(self, now: float | None = None) -> None:
        self.ok.set(1)
        self.timestamp.set(time.time() if now is None else now)

    def failed(self) -> None:
        self.ok.set(0)


class Ops:
    """The three endpoints for one service.

    `ready` returns None when ready, else the reason. `reload` re-reads the configuration
    and raises one of `config_errors` (whose text names the problem) when it is refused;
    anything else it raises is a bug and propagates. `write_tokens` returns the tokens
    now in force, None when none is configured (see `write_refusal`).
    """

    def __init__(
        self,
        service: str,
        *,
        ready: Callable[[], str | None],
        reload: Callable[[], None],
        config_errors: tuple[type[Exception], ...],
        write_tokens: Callable[[], tuple[str | Secret, ...] | None],
    ) -> None:
        self.name = f"StackSense {service}"
        self._ready = ready
        self._reload = reload
        self._config_errors = config_errors
        self._write_tokens = write_tokens

    def healthy(self) -> OpsAnswer:
        return OpsAnswer(200, f"{self.name} is Healthy.\n")

    def ready(self) -> OpsAnswer:
        reason = self._ready()
        if reason is None:
            return OpsAnswer(200, f"{self.name} is Ready.\n")
        return OpsAnswer(503, f"{self.name} is not ready: {reason}\n")

    def reload(
        self, method: str, authorization: str | None, client_host: str, origin: str | None = None
    ) -> OpsAnswer:
        if method not in RELOAD_METHODS:
            return OpsAnswer(
                405, "Only POST or PUT requests allowed\n", (("Allow", ", ".join(RELOAD_METHODS)),)
            )
        refusal = write_refusal(self._write_tokens(), authorization, client_host, origin)
        if refusal is not None:
            return OpsAnswer(401, refusal + "\n", (("WWW-Authenticate", "Bearer"),))
        try:
            self._reload()
        except self._config_errors as exc:
            return OpsAnswer(500, f"failed to reload config: {one_line(exc)}\n")
        return OpsAnswer(200, "configuration reloaded\n")

    def handle(
        self,
        method: str,
        path: str,
        authorization: str | None,
        client_host: str,
        origin: str | None = None,
    ) -> OpsAnswer | None:
        """The answer for an ops path, or None when `path` is not one."""
        if path == RELOAD:
            return self.reload(method, authorization, client_host, origin)
        if path not in (HEALTHY, READY):
            return None
        if method not in READ_METHODS:
            return OpsAnswer(
                405, "Only GET or HEAD requests allowed\n", (("Allow", ", ".join(READ_METHODS)),)
            )
        return self.healthy() if path == HEALTHY else self.ready()
