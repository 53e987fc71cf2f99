"""The router config's `console:` section (strict like the rest: unknown keys are errors)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alert_router.errors import ConfigError
from alert_router.timeutil import parse_duration
from stacksense_common.config import check_keys  # lists the allowed keys

KEYS = {
    "enabled",
    "rules_url",
    "prometheus_url",
    "exporter_url",
    "exporter_token_file",
    "grafana_url",
    "session_key_file",
    "session_lifetime",
    "secure_cookies",
    "refresh_interval",
    "request_timeout",
}


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the console reads from; defaults match `make run` (all on loopback)."""

    enabled: bool = True
    rules_url: str = "http://127.0.0.1:9817"
    prometheus_url: str = "http://127.0.0.1:9090"
    exporter_url: str = "http://127.0.0.1:9816"
    # The bearer token for the exporter's /api/v1/servers writes (its --web.api-token-file,
    # or its reload token); read at each use, never logged. "" = send none (the exporter then
    # accepts writes from loopback clients only).
    exporter_token_file: str = ""
    grafana_url: str = ""  # "" = no Grafana links
    # "" = beside the SQLite store (<storage.path>.console-key), else beside the config file
    session_key_file: str = ""
    session_lifetime: float = 12 * 3600.0
    secure_cookies: bool = False  # set true behind HTTPS
    refresh_interval: float = 5.0  # seconds between the browser's polls of live regions
    request_timeout: float = 3.0  # per request to the rule engine, Prometheus, the exporter


def _url(section: Mapping[str, Any], key: str, default: str, *, optional: bool = False) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"console.{key}", "must be a string URL")
    if optional and value == "":
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"console.{key}", "must be an http:// or https:// URL with a host")
    if parts.password is not None:
        raise ConfigError(f"console.{key}", "must not contain a password")
    return value.rstrip("/")


def _seconds(
    section: Mapping[str, Any], key: str, default: float, low: float, high: float
) -> float:
    if key not in section:
        return default
    try:
        value = parse_duration(section[key])
    except ValueError as exc:
        raise ConfigError(f"console.{key}", str(exc)) from None
    if not low <= value <= high:
        raise ConfigError(f"console.{key}", f"must be from {low:g}s to {high:g}s")
    return value


def parse_console(raw: Any, base: Path) -> ConsoleConfig:
    """Validate the `console:` mapping; relative paths resolve beside the config file."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("console", "must be a mapping")
    check_keys(raw, "console", KEYS)
    for key in ("enabled", "secure_cookies"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError(f"console.{key}", "must be true or false")
    d = ConsoleConfig()
    token_file = raw.get("exporter_token_file", "")
    if not isinstance(token_file, str):
        raise ConfigError("console.exporter_token_file", "must be a file path (or empty)")
    key_file = raw.get("session_key_file")
    if key_file is not None and (not isinstance(key_file, str) or not key_file):
        raise ConfigError("console.session_key_file", "must be a file path")
    return ConsoleConfig(
        enabled=raw.get("enabled", d.enabled),
        rules_url=_url(raw, "rules_url", d.rules_url),
        prometheus_url=_url(raw, "prometheus_url", d.prometheus_url),
        exporter_url=_url(raw, "exporter_url", d.exporter_url),
        exporter_token_file=str(base / token_file) if token_file else "",
        grafana_url=_url(raw, "grafana_url", d.grafana_url, optional=True),
        session_key_file=str(base / key_file) if key_file else "",
        session_lifetime=_seconds(raw, "session_lifetime", d.session_lifetime, 60, 30 * 86400),
        secure_cookies=raw.get("secure_cookies", d.secure_cookies),
        refresh_interval=_seconds(raw, "refresh_interval", d.refresh_interval, 1, 300),
        request_timeout=_seconds(raw, "request_timeout", d.request_timeout, 0.1, 60),
    )
