"""Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP date, as seconds to wait."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC


def parse(
    value: str | None,
    *,
    cap: float | None = None,
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds to wait, or None when the header is absent or unreadable.

    A date in the past means "now" (0). `cap` bounds what a peer can ask for, so a bogus
    header cannot park a client for days.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    seconds: float
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            # HTTP dates are always GMT; "-0000" parses zone-less but means the same.
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    seconds = max(0.0, seconds)
    return seconds if cap is None else min(cap, seconds)
