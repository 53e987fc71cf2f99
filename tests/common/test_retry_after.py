"""Retry-After: delta-seconds or an HTTP date (RFC 9110 10.2.3), as seconds to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from stacksense_common import retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at_now() -> float:
    return NOW.timestamp()


@pytest.mark.parametrize(
    "header, expected",
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),  # IMF-fixdate
        ("Sunday, 01-Mar-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Sun Mar  1 12:02:00 2026", 120.0),  # obsolete asctime form (GMT implied)
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),  # delta-seconds are digits only
        ("1.5", None),
        ("١٢", None),  # non-ASCII digits
    ],
)
def test_forms(header: str | None, expected: float | None) -> None:
    assert retry_after.parse(header, now=at_now) == expected


def test_a_cap_bounds_what_a_peer_can_ask_for() -> None:
    assert retry_after.parse("999999", cap=300) == 300
    far = format_datetime(NOW + timedelta(days=3), usegmt=True)
    assert retry_after.parse(far, cap=300, now=at_now) == 300


def test_a_date_uses_the_real_clock_by_default() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    got = retry_after.parse(when)
    assert got is not None and 115 <= got <= 121
