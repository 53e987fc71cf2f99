"""The dedupe decision: a pure function table (Alertmanager's needsUpdate)."""

from __future__ import annotations

import pytest

from alert_router.dedupe import LogEntry, should_notify

NOW = 100_000.0
HOUR = 3600.0


def entry(firing: set[str], resolved: set[str] = frozenset(), age: float = 60.0) -> LogEntry:  # type: ignore[assignment]
    return LogEntry(frozenset(firing), frozenset(resolved), NOW - age)


@pytest.mark.parametrize(
    ("last", "firing", "resolved", "send_resolved", "notify", "reason"),
    [
        (None, {"a"}, set(), True, True, "first_notification"),
        (None, set(), {"a"}, True, False, "nothing_firing"),
        (entry({"a"}), {"a"}, set(), True, False, "duplicate"),
        (entry({"a"}), {"a", "b"}, set(), True, True, "new_firing_alerts"),
        (entry({"a", "b"}), {"a"}, {"b"}, True, True, "new_resolved_alerts"),
        (entry({"a", "b"}), {"a"}, {"b"}, False, False, "duplicate"),
        (entry({"a"}, {"b"}), {"a"}, {"b"}, True, False, "duplicate"),
        (entry({"a"}), set(), {"a"}, True, True, "all_resolved"),
        (entry({"a"}), set(), {"a"}, False, True, "all_resolved"),
        (entry(set(), {"a"}), set(), {"a"}, True, False, "already_notified_resolved"),
        (entry({"a"}, age=4 * HOUR), {"a"}, set(), True, True, "repeat_interval_elapsed"),
        (entry({"a"}, age=4 * HOUR - 1), {"a"}, set(), True, False, "duplicate"),
    ],
)
def test_should_notify(last, firing, resolved, send_resolved, notify, reason):
    decision = should_notify(
        last, firing, resolved, send_resolved=send_resolved, repeat_interval=4 * HOUR, now=NOW
    )
    assert (decision.notify, decision.reason) == (notify, reason)
