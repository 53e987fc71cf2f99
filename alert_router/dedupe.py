"""The dedupe decision (Alertmanager's DedupStage.needsUpdate) as a pure function of its inputs."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

# The key of an outbox payload that holds the log entry its successful send records.
NFLOG_KEY = "_nflog"


@dataclass(frozen=True)
class LogEntry:
    """What was last notified to one integration of one receiver for one group."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


def entry_of_payload(payload: Mapping[str, Any], sent_at: float) -> LogEntry:
    """The log entry an outbox payload stands for (rows queued before the key existed carry
    only their alerts: those that were sent)."""
    logged = payload.get(NFLOG_KEY)
    if isinstance(logged, Mapping):
        return LogEntry(frozenset(logged["firing"]), frozenset(logged["resolved"]), sent_at)
    alerts = payload.get("alerts", [])
    return LogEntry(
        frozenset(a["fingerprint"] for a in alerts if a["status"] == "firing"),
        frozenset(a["fingerprint"] for a in alerts if a["status"] != "firing"),
        sent_at,
    )


@dataclass(frozen=True)
class Decision:
    """Whether to notify, and why (the reason is a short stable label)."""

    notify: bool
    reason: str


def should_notify(
    last: LogEntry | None,
    firing: Set[str],
    resolved: Set[str],
    *,
    send_resolved: bool,
    repeat_interval: float,
    now: float,
) -> Decision:
    """Decide whether a group's current alerts need a notification; `now` is passed in."""
    if last is None:
        if firing:
            return Decision(True, "first_notification")
        return Decision(False, "nothing_firing")
    if not firing <= last.firing:
        return Decision(True, "new_firing_alerts")
    if not firing:
        # Everything resolved: tell the receiver once (also clears the log) — unless it never
        # heard of any firing alert, in which case they fired and resolved within one interval.
        if last.firing:
            return Decision(True, "all_resolved")
        return Decision(False, "already_notified_resolved")
    if send_resolved and not resolved <= last.resolved:
        return Decision(True, "new_resolved_alerts")
    if last.sent_at <= now - repeat_interval:
        return Decision(True, "repeat_interval_elapsed")
    return Decision(False, "duplicate")
