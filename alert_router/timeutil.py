"""Durations and timestamps in Alertmanager's formats (Go durations, RFC 3339)."""

from __future__ import annotations

from datetime import UTC, datetime

# Durations are Prometheus' grammar, shared by every service (stacksense_common.duration):
# parse_duration raises a ValueError naming the grammar.
from stacksense_common.duration import format as format_duration
from stacksense_common.duration import parse as parse_duration

__all__ = [
    "GO_ZERO_TIME",
    "format_duration",
    "format_time",
    "parse_duration",
    "parse_time",
    "to_datetime",
]

# Go's zero time: Alertmanager writes it as endsAt while an alert fires.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


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
