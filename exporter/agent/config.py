"""The push agent's settings: file < environment < flags, validated; the token is never shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from stacksense_common.config import ConfigError, check_keys
from stacksense_common.secret import Secret

FILE_KEYS = {
    "url",
    "server",
    "token",
    "token_file",
    "interval_seconds",
    "timeout_seconds",
    "max_backoff_seconds",
}
ENV = {
    "url": "STACKSENSE_URL",
    "server": "STACKSENSE_SERVER",
    "token": "STACKSENSE_TOKEN",
    "token_file": "STACKSENSE_TOKEN_FILE",
    "interval_seconds": "STACKSENSE_INTERVAL",
}


class AgentConfigError(ConfigError):
    """The agent's configuration is unusable; the message starts with the setting's name."""


@dataclass(frozen=True)
class AgentConfig:
    """Where to send, as whom, and how often. The token is a Secret: it shows as <secret>."""

    url: str
    server: str
    token: Secret
    interval_seconds: float = 30.0
    timeout_seconds: float = 10.0
    max_backoff_seconds: float = 60.0

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/api/v1/heartbeat/{quote(self.server, safe='')}"


def load_config(
    file: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> AgentConfig:
    """Merge file < environment < flags, validate, and read the token file."""
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            data = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise AgentConfigError(f"{file}: cannot read agent config: {exc}") from None
        try:
            raw.update(check_keys(data, "", FILE_KEYS))
        except ConfigError as exc:  # the kit's check, raised as the agent's error type
            raise AgentConfigError(f"{file}: {exc}") from None
    for key, var in ENV.items():
        if env.get(var):
            # A token given by the environment replaces a token file from the file, and so on.
            if key in ("token", "token_file"):
                raw.pop("token", None)
                raw.pop("token_file", None)
            raw[key] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if raw.get("token_file") and overrides.get("token_file"):
        raw.pop("token", None)
    return _validate(raw)


def _validate(raw: Mapping[str, Any]) -> AgentConfig:
    for key in ("url", "server"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise AgentConfigError(f"{key}: required (flag --{key}, {ENV[key]} or `{key}:`)")
    url = raw["url"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentConfigError(f"url: expected http(s)://host[:port], got {redact_url(url)!r}")
    if raw.get("token") and raw.get("token_file"):
        raise AgentConfigError("token, token_file: give only one")
    token = raw.get("token")
    if raw.get("token_file"):
        try:
            token = Path(str(raw["token_file"])).read_text().strip()
        except OSError as exc:
            raise AgentConfigError(
                f"token_file: cannot read {raw['token_file']}: {exc.strerror}"
            ) from None
    if not isinstance(token, str) or not token:
        raise AgentConfigError(
            f"token: required ({ENV['token']}, {ENV['token_file']}, --token-file or `token_file:`)"
        )
    if any(c.isspace() or not c.isprintable() for c in token):
        raise AgentConfigError("token: must not contain whitespace or control characters")
    numbers = {}
    for key, low in (
        ("interval_seconds", 1.0),
        ("timeout_seconds", 0.1),
        ("max_backoff_seconds", 1.0),
    ):
        value = raw.get(key, getattr(AgentConfig, key))  # the defaults live on AgentConfig
        try:
            numbers[key] = float(value)
        except (TypeError, ValueError):
            raise AgentConfigError(f"{key}: expected a number, got {value!r}") from None
        if not low <= numbers[key] <= 86400:
            raise AgentConfigError(f"{key}: must be between {low:g} and 86400, got {value!r}")
    return AgentConfig(url=url, server=raw["server"].strip(), token=Secret(token), **numbers)


def redact_url(url: str) -> str:
    """The URL without any user:password part, for logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"<redacted>@{netloc}"))
