"""Load and validate the router config (YAML); every error names its key path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from alert_router.console.settings import ConsoleConfig, parse_console
from alert_router.diagnostics.fetch import DiagnosticsConfig, parse_diagnostics
from alert_router.dispatch.route import Route, build_route
from alert_router.errors import ConfigError
from alert_router.inhibit import InhibitRule, build_inhibit_rules, default_inhibit_rules
from stacksense_common.config import Seconds, load
from stacksense_common.secret import Secret

# The file's sections are dataclasses read by the shared loader (stacksense_common.config):
# fields are the allowed keys, defaults are written there once, errors name the key path.
# The route tree (alert_router.dispatch.route), the receivers (alert_router.notify), the
# inhibit rules, console and diagnostics have readers of their own, called on what the
# loader hands over.


HISTORY_RETENTION = 90 * 86400.0  # storage.history_retention's default


@dataclass(frozen=True)
class GlobalSection:
    """The `global:` section: the router's timeouts and Alertmanager's notifier defaults."""

    resolve_timeout: Seconds = 300.0
    # A firing alert relayed by an Alertmanager webhook is re-sent only every
    # repeat_interval (4h by default), so it must outlive that before it counts as
    # resolved without word.
    webhook_resolve_timeout: Seconds = 4 * 3600.0 + 600.0
    # Alertmanager's names, read by the notifiers from the section as written.
    smtp_from: Any = None
    smtp_hello: Any = None
    smtp_smarthost: Any = None
    smtp_auth_username: Any = None
    smtp_auth_password: Any = None
    smtp_auth_password_file: Any = None
    smtp_auth_secret: Any = None
    smtp_auth_identity: Any = None
    smtp_require_tls: Any = None
    slack_api_url: Any = None
    slack_api_url_file: Any = None
    pagerduty_url: Any = None
    http_config: Any = None


# The router's own; the rest of `global:` is handed to the notifiers as written.
ROUTER_GLOBAL_KEYS = {"resolve_timeout", "webhook_resolve_timeout"}


@dataclass(frozen=True)
class AuthSection:
    """The `auth:` section. Tokens are read from a file (one a line) and/or a variable."""

    tokens_file: Path | None = None
    tokens_env: str | None = None
    protect_reads: bool = False
    allow_unauthenticated_writes: bool = False


@dataclass(frozen=True)
class AuthConfig:
    """Bearer tokens for writes (and optionally reads); each a Secret, shown as <secret>."""

    tokens: tuple[Secret, ...] = ()
    protect_reads: bool = AuthSection.protect_reads
    allow_unauthenticated_writes: bool = AuthSection.allow_unauthenticated_writes


@dataclass(frozen=True)
class DeliveryConfig:
    """How the outbox retries a failed notification: the `delivery:` section, key for key."""

    initial_backoff: Seconds = 1.0
    max_backoff: Seconds = 60.0
    give_up_after: Seconds = 86400.0
    workers: int = 4
    lease: Seconds = 120.0

    def __post_init__(self) -> None:
        # The shared loader puts these paths under the section's: "delivery.workers: ...".
        if not 1 <= self.workers <= 64:
            raise ConfigError("workers", "must be an integer from 1 to 64")
        if self.initial_backoff <= 0:
            raise ConfigError("initial_backoff", "must be longer than 0")
        if self.max_backoff < self.initial_backoff:
            raise ConfigError("max_backoff", "must not be shorter than initial_backoff")


@dataclass(frozen=True)
class WebConfig:
    """The `web:` section, key for key."""

    external_url: str = "http://localhost:9818"
    max_request_bytes: int = 5 * 1024 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "external_url", self.external_url.rstrip("/"))
        if self.max_request_bytes < 1024:
            raise ConfigError("max_request_bytes", "must be an integer of at least 1024")


@dataclass(frozen=True)
class IncidentsConfig:
    """The `incidents:` section, key for key."""

    auto_close_after: Seconds = 0.0  # 0 = closing is a human decision
    # Severities whose alerts open incidents (Watchdog, InfoInhibitor and severity "none"
    # never do; an alert without a severity label does).
    open_for_severities: tuple[str, ...] = ("critical", "warning")


@dataclass
class RouterConfig:
    """The whole validated config; swapped at once on reload."""

    route: Route
    receivers: dict[str, dict[str, Any]]
    inhibit_rules: list[InhibitRule]
    global_config: dict[str, Any]
    resolve_timeout: float = GlobalSection.resolve_timeout
    webhook_resolve_timeout: float = GlobalSection.webhook_resolve_timeout
    storage_path: str = "stacksense-router.db"  # beside the config file when relative
    storage_synchronous: str = "NORMAL"
    storage_url: str = ""  # postgresql://user@host:port/db (no password); "" = SQLite
    storage_password: Secret | None = None
    history_retention: float = HISTORY_RETENTION  # 0: for ever
    auth: AuthConfig = field(default_factory=AuthConfig)
    external_url: str = WebConfig.external_url
    max_request_bytes: int = WebConfig.max_request_bytes
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    incident_auto_close: float = IncidentsConfig.auto_close_after
    incident_open_for: tuple[str, ...] = IncidentsConfig.open_for_severities
    console: ConsoleConfig = field(default_factory=ConsoleConfig)  # the web console
    diagnostics: DiagnosticsConfig | None = None  # alert_router.diagnostics.fetch
    original: str = ""  # the YAML as read, for /api/v2/status (secrets redacted)


def _read_tokens(auth: AuthSection) -> tuple[Secret, ...]:
    tokens: list[str] = []
    if auth.tokens_file is not None:
        try:
            text = auth.tokens_file.read_text()
        except OSError as exc:
            raise ConfigError(
                "auth.tokens_file", f"cannot read {auth.tokens_file}: {exc.strerror}"
            ) from None
        tokens += [t.strip() for t in text.splitlines() if t.strip() and not t.startswith("#")]
    if auth.tokens_env is not None:
        value = os.environ.get(auth.tokens_env)
        if value is None:
            raise ConfigError(
                "auth.tokens_env", f"environment variable {auth.tokens_env} is not set"
            )
        tokens += [t.strip() for t in value.split(",") if t.strip()]
    return tuple(Secret(t) for t in tokens)


def _auth(auth: AuthSection) -> AuthConfig:
    tokens = _read_tokens(auth)
    if not tokens and not auth.allow_unauthenticated_writes:
        raise ConfigError(
            "auth",
            "no bearer tokens: set tokens_file or tokens_env "
            "(or allow_unauthenticated_writes: true for a closed network)",
        )
    return AuthConfig(tokens, auth.protect_reads, auth.allow_unauthenticated_writes)


@dataclass(frozen=True)
class StorageSection:
    """The `storage:` section: a SQLite file (path, synchronous) or PostgreSQL (url, password)."""

    path: str | None = None  # None: RouterConfig.storage_path
    synchronous: str | None = None  # normal or full; None: RouterConfig.storage_synchronous
    url: Any = None  # checked by _storage_url, whose errors never echo it
    password_env: str | None = None
    password_file: Path | None = None
    # The audit history (alert transitions, notifications, silences, incidents); 0 keeps
    # it for ever. Bounded by default so the store does not grow without end.
    history_retention: Seconds = HISTORY_RETENTION

    def __post_init__(self) -> None:
        # The shared loader puts these paths under the section's: "storage.path: ...".
        if self.password_env is not None and self.password_file is not None:
            raise ConfigError("password_file", "set password_env or password_file, not both")
        if self.url is not None:
            for key in ("path", "synchronous"):
                if getattr(self, key) is not None:
                    raise ConfigError(key, "SQLite only: not with storage.url")
            return
        for key in ("password_env", "password_file"):
            if getattr(self, key) is not None:
                raise ConfigError(key, "only with storage.url (PostgreSQL)")
        if self.synchronous is not None and self.synchronous.upper() not in ("NORMAL", "FULL"):
            raise ConfigError("synchronous", "must be normal or full")


@dataclass(frozen=True)
class StorageConfig:
    """Where the store lives: a SQLite file, or a PostgreSQL database shared by replicas."""

    path: str
    synchronous: str = "NORMAL"
    url: str = ""
    password: Secret | None = None


def _storage_password(section: StorageSection) -> Secret | None:
    if section.password_env is not None:
        value = os.environ.get(section.password_env)
        if value is None:
            raise ConfigError(
                "storage.password_env", f"environment variable {section.password_env} is not set"
            )
        return Secret(value)
    if section.password_file is not None:
        try:
            return Secret.from_file(section.password_file)
        except OSError as exc:
            raise ConfigError(
                "storage.password_file", f"cannot read {section.password_file}: {exc.strerror}"
            ) from None
    return None


def _storage_url(raw: Any) -> str:
    # Errors never echo the url: a password pasted into it must not reach a log.
    if not isinstance(raw, str):
        raise ConfigError("storage.url", "must be a string postgresql://user@host:port/db")
    try:
        url = urlsplit(raw)
        url.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(
            "storage.url", "not a valid URL (expected postgresql://user@host:port/db)"
        ) from None
    if url.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "storage.url", "scheme must be postgresql:// (for SQLite, use storage.path)"
        )
    if url.password is not None or "password" in parse_qs(url.query):
        raise ConfigError(
            "storage.url",
            "must not contain a password: use storage.password_env or storage.password_file",
        )
    if not url.hostname:
        raise ConfigError("storage.url", "a host is required (postgresql://user@host:port/db)")
    if url.path.strip("/") == "":
        raise ConfigError(
            "storage.url", "a database name is required (postgresql://user@host:port/db)"
        )
    return raw


def _storage(section: StorageSection, base: Path) -> StorageConfig:
    if section.url is not None:
        return StorageConfig("", url=_storage_url(section.url), password=_storage_password(section))
    sync = (section.synchronous or RouterConfig.storage_synchronous).upper()
    path = section.path if section.path is not None else RouterConfig.storage_path
    if path != ":memory:" and not os.path.isabs(path):
        path = str(base / path)
    return StorageConfig(path, sync)


@dataclass(frozen=True)
class RouterFile:
    """The whole router config file, section by section."""

    global_: GlobalSection = field(default=GlobalSection(), metadata={"key": "global"})
    route: Any = None  # required; alert_router.dispatch.route reads it
    inhibit_rules: Any = None  # absent: the shipped rules (alert_router.inhibit)
    receivers: Any = None  # required; alert_router.notify checks each
    templates: Any = None
    storage: StorageSection = StorageSection()
    auth: AuthSection = AuthSection()
    web: WebConfig = WebConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    console: Any = None  # alert_router.console.settings
    diagnostics: Any = None  # alert_router.diagnostics.fetch


def _receivers(raw: Any, global_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from alert_router.notify import build_notifiers

    if not isinstance(raw, list) or not raw:
        raise ConfigError("receivers", "required: a list of receivers")
    out: dict[str, dict[str, Any]] = {}
    for i, receiver in enumerate(raw):
        path = f"receivers[{i}]"
        if not isinstance(receiver, dict):
            raise ConfigError(path, "must be a mapping")
        name = receiver.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}.name", "required")
        if name in out:
            raise ConfigError(f"{path}.name", f"duplicate receiver name {name!r}")
        # A ReceiverConfigError is a ConfigError naming the receiver's key path.
        build_notifiers(receiver, path=path, global_config=global_config)
        out[name] = receiver
    return out


def _check_receivers_exist(route: Route, receivers: Mapping[str, Any]) -> None:
    for node in route.walk():
        if node.receiver not in receivers:
            raise ConfigError(
                f"route (id {node.route_id}).receiver",
                f"receiver {node.receiver!r} is not defined in receivers",
            )


def parse_config(raw: Any, *, base_dir: Path | None = None, original: str = "") -> RouterConfig:
    """Validate a config mapping (as loaded from YAML) into a RouterConfig."""
    base = base_dir or Path.cwd()
    top = load(RouterFile, raw, "", base=base)
    given = raw or {}  # load checked it is a mapping
    glob = given.get("global") or {}
    notifier_global = {k: v for k, v in glob.items() if k not in ROUTER_GLOBAL_KEYS}
    if top.route is None:
        raise ConfigError("route", "required: the top route with a receiver")
    route = build_route(top.route)
    receivers = _receivers(top.receivers, notifier_global)
    _check_receivers_exist(route, receivers)
    rules = (
        build_inhibit_rules(top.inhibit_rules)
        if "inhibit_rules" in given
        else default_inhibit_rules()
    )
    if "templates" in given and not isinstance(top.templates, list):
        raise ConfigError("templates", "must be a list of paths")
    storage = _storage(top.storage, base)
    return RouterConfig(
        route=route,
        receivers=receivers,
        inhibit_rules=rules,
        global_config=notifier_global,
        resolve_timeout=top.global_.resolve_timeout,
        webhook_resolve_timeout=top.global_.webhook_resolve_timeout,
        storage_path=storage.path,
        storage_synchronous=storage.synchronous,
        storage_url=storage.url,
        storage_password=storage.password,
        history_retention=top.storage.history_retention,
        auth=_auth(top.auth),
        external_url=top.web.external_url,
        max_request_bytes=top.web.max_request_bytes,
        delivery=top.delivery,
        incident_auto_close=top.incidents.auto_close_after,
        incident_open_for=top.incidents.open_for_severities,
        console=parse_console(top.console, base),
        diagnostics=parse_diagnostics(top.diagnostics, base),
        original=original,
    )


def yaml_problem(exc: yaml.YAMLError) -> str:
    """ "line N, column M: <problem>" of a YAML error, never the text of the line.

    PyYAML's own message quotes the offending lines, and a broken line is as likely as any
    to hold a password or a webhook token.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    # The problem itself can quote a scalar (e.g. "found unknown escape character 'x'"),
    # but only one character of it; the context ("while scanning ...") is dropped.
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate a YAML config file."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError("", f"cannot read config {file}: {exc.strerror}") from None
    return load_config_text(text, file)


def load_config_text(text: str, file: Path) -> RouterConfig:
    """Validate config text that was read from `file` (relative paths resolve beside it)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{file} is not valid YAML: {yaml_problem(exc)}") from None
    return parse_config(raw, base_dir=file.parent, original=text)
