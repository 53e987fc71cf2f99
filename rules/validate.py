"""Helpers for reading YAML mappings strictly: unknown keys and wrong types name their path.

The error type, the duration grammar and YAML reading are the shared ones
(stacksense_common); the condition file's hand-written reader uses these helpers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from stacksense_common.config import ConfigError, check_keys, duration_at, read_yaml
from stacksense_common.duration import format as format_duration

__all__ = [
    "ConfigError",
    "boolean",
    "duration",
    "format_duration",
    "mapping",
    "number",
    "read_yaml",
    "string",
    "string_map",
]


def mapping(
    raw: Any, path: str, allowed: Collection[str], required: Collection[str] = ()
) -> Mapping[str, Any]:
    """Check `raw` is a mapping with only `allowed` keys and all `required` ones."""
    return check_keys(raw, path, set(allowed), required=sorted(required))


def number(
    raw: Any, path: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
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
    """Seconds in a Prometheus duration (`1h30m`, `5m`, `90s`, `500ms`, `0`)."""
    return duration_at(raw, path)
