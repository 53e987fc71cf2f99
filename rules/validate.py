"""Helpers for reading YAML mappings strictly: unknown keys and wrong types name their path."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


class ConfigError(ValueError):
    """Invalid configuration; the message starts with the offending key path."""


def mapping(raw: Any, path: str, allowed: Collection[str],
            required: Collection[str] = ()) -> Mapping[str, Any]:
    """Check `raw` is a mapping with only `allowed` keys and all `required` ones."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path or '<top>'}: expected a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if key not in raw:
            raise ConfigError(f"{path}.{key}: required" if path else f"{key}: required")
    return raw


def number(raw: Any, path: str, *, minimum: float | None = None,
           maximum: float | None = None) -> float:
    """A real number (not a bool) within bounds."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"{path}: expected a number, got {raw!r}")
    if minimum is not None and raw < minimum:
        raise ConfigError(f"{path}: must be >= {minimum}, got {raw}")
    if maximum is not None and raw > maximum:
        raise ConfigError(f"{path}: must be <= {maximum}, got {raw}")
    return float(raw)


def string(raw: Any, path: str, *, allow_empty: bool = False) -> str:
    """A string (non-empty unless allowed)."""
    if not isinstance(raw, str) or (not raw and not allow_empty):
        raise ConfigError(f"{path}: expected a non-empty string, got {raw!r}")
    return raw


def boolean(raw: Any, path: str) -> bool:
    """A YAML boolean."""
    if not isinstance(raw, bool):
        raise ConfigError(f"{path}: expected true or false, got {raw!r}")
    return raw


def string_map(raw: Any, path: str) -> dict[str, str]:
    """A mapping of string to string (labels, annotations)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(raw).__name__}")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float):
            raise ConfigError(f"{path}.{key}: expected a string value, got {value!r}")
        out[key] = str(value)
    return out


def duration(raw: Any, path: str) -> float:
    """A duration in seconds: a number, or Prometheus style `1h30m`, `5m`, `90s`."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if raw < 0:
            raise ConfigError(f"{path}: must be >= 0, got {raw}")
        return float(raw)
    if isinstance(raw, str):
        match = _DURATION.match(raw.strip())
        if match and raw.strip():
            hours, minutes, seconds = match.groups()
            return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    raise ConfigError(f"{path}: expected a duration like 30s, 5m or 1h, got {raw!r}")


def format_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration string (`5m`, `90s`, `1h`)."""
    if seconds <= 0:
        return "0s"
    whole = int(seconds)
    if whole != seconds:
        return f"{round(seconds * 1000)}ms"
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def read_yaml(path: Path) -> Any:
    """A YAML file's content; unreadable files and bad YAML are ConfigErrors naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
