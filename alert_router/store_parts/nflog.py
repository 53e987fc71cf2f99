"""The notification log: what was notified to whom."""

from __future__ import annotations

import json

from alert_router.dedupe import LogEntry, entry_of_payload
from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

NFLOG_SCHEMA = """\
CREATE TABLE IF NOT EXISTS nflog (
    group_key TEXT NOT NULL, receiver TEXT NOT NULL, integration INTEGER NOT NULL,
    firing TEXT NOT NULL, resolved TEXT NOT NULL, sent_at REAL NOT NULL,
    PRIMARY KEY (group_key, receiver, integration));
"""
PUT_NFLOG = Insert(
    "nflog",
    ("group_key", "receiver", "integration", "firing", "resolved", "sent_at"),
    conflict_key=("group_key", "receiver", "integration"),
)


class NflogMixin(StoreBase):
    """The notification log: what was notified to whom."""

    def get_nflog(self, group_key: str, receiver: str, integration: int) -> LogEntry | None:
        row = (
            self.conn()
            .execute(
                "SELECT firing, resolved, sent_at FROM nflog WHERE group_key = ? AND receiver = ? "
                "AND integration = ?",
                (group_key, receiver, integration),
            )
            .fetchone()
        )
        if row is None:
            return None
        return LogEntry(frozenset(json.loads(row[0])), frozenset(json.loads(row[1])), row[2])

    def put_nflog(self, group_key: str, receiver: str, integration: int, entry: LogEntry) -> None:
        self.conn().execute(
            PUT_NFLOG.text(),
            (
                group_key,
                receiver,
                integration,
                json.dumps(sorted(entry.firing)),
                json.dumps(sorted(entry.resolved)),
                entry.sent_at,
            ),
        )

    def latest_notified(self, group_key: str, receiver: str, integration: int) -> LogEntry | None:
        """What the receiver has been or is being told: the newest notification still queued
        or being sent, else the log of the last successful send."""
        row = (
            self.conn()
            .execute(
                "SELECT payload, created_at FROM outbox WHERE group_key = ? AND receiver = ? AND "
                "integration = ? AND status IN ('pending', 'sending') ORDER BY id DESC LIMIT 1",
                (group_key, receiver, integration),
            )
            .fetchone()
        )
        if row is not None:
            return entry_of_payload(json.loads(row[0]), float(row[1]))
        return self.get_nflog(group_key, receiver, integration)

    def gc_nflog(self, before: float) -> None:
        self.conn().execute("DELETE FROM nflog WHERE sent_at < ? AND firing = '[]'", (before,))
