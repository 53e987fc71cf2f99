"""Durations and timestamps in Alertmanager's formats (Go durations, RFC 3339)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0,
}
# Go's zero time: Alertmanager writes it as endsAt while an alert fires.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as "30s", "1h30m" or "0s"; ValueError otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid duration {text!r}: want e.g. 30s, 5m, 4h, 1h30m")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}: want e.g. 30s, 5m, 4h, 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """A Prometheus duration string for `seconds` (whole units, largest first)."""
    if seconds <= 0:
        return "0s"
    if seconds != int(seconds):
        return f"{int(round(seconds * 1000))}ms"
    rest = int(seconds)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def parse_time(text: str) -> float | None:
    """Unix seconds from an RFC 3339 string; None for Go's zero time; ValueError if invalid."""
    if not isinstance(text, str):
        raise ValueError(f"invalid timestamp {text!r}: want an RFC 3339 string")
    if text.startswith("0001-01-01T00:00:00"):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r}: want RFC 3339") from None
    if value.tzinfo is None:
        raise ValueError(f"invalid timestamp {text!r}: a time zone (e.g. Z) is required")
    return value.timestamp()


def format_time(ts: float | None) -> str:
    """RFC 3339 in UTC with millisecond precision (Go's zero time for None)."""
    if ts is None:
        return GO_ZERO_TIME
    value = datetime.fromtimestamp(ts, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_datetime(ts: float | None) -> datetime | None:
    """An aware UTC datetime from unix seconds (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
