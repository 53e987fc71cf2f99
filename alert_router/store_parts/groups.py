"""Aggregation groups and their alerts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from alert_router.sql import Insert
from alert_router.store_parts.alerts import _ALERT_COLUMNS, AlertRow, _alert
from alert_router.store_parts.base import StoreBase

GROUPS_SCHEMA = """\
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY, route_id TEXT NOT NULL, receiver TEXT NOT NULL,
    group_labels TEXT NOT NULL, created_at REAL NOT NULL, next_flush_at REAL NOT NULL,
    last_flush_at REAL);
CREATE INDEX IF NOT EXISTS groups_due ON groups (next_flush_at);
CREATE TABLE IF NOT EXISTS group_alerts (
    group_key TEXT NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (group_key, fingerprint));
CREATE INDEX IF NOT EXISTS group_alerts_fp ON group_alerts (fingerprint);
"""


@dataclass
class GroupRow:
    """One aggregation group."""

    group_key: str
    route_id: str
    receiver: str
    group_labels: dict[str, str]
    next_flush_at: float
    last_flush_at: float | None


ADD_GROUPS = Insert(
    "groups",
    ("group_key", "route_id", "receiver", "group_labels", "created_at", "next_flush_at"),
    ignore_conflicts=True,
)
ADD_GROUP_ALERTS = Insert("group_alerts", ("group_key", "fingerprint"), ignore_conflicts=True)


class GroupsMixin(StoreBase):
    """Aggregation groups and the alerts each holds."""

    def ensure_groups(self, rows: Iterable[tuple[str, str, str, str, float, float]]) -> None:
        """Create groups that do not exist: (key, route_id, receiver, labels, created, flush)."""
        self.dialect.insert_many(self.conn(), ADD_GROUPS, rows)

    def add_group_alerts(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.dialect.insert_many(self.conn(), ADD_GROUP_ALERTS, pairs)

    def expedite_unflushed_groups(self, keys: Iterable[str], now: float) -> None:
        """Flush at `now` the groups that have not flushed yet (an old alert joined them)."""
        self.conn().executemany(
            "UPDATE groups SET next_flush_at = ? WHERE group_key = ? AND last_flush_at IS NULL "
            "AND next_flush_at > ?",
            [(now, key, now) for key in keys],
        )

    def due_groups(self, now: float, limit: int = 1000) -> list[GroupRow]:
        return [
            GroupRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5])
            for r in self.conn().execute(
                "SELECT group_key, route_id, receiver, group_labels, next_flush_at, "
                "last_flush_at FROM groups WHERE next_flush_at <= ? ORDER BY next_flush_at "
                "LIMIT ?",
                (now, limit),
            )
        ]

    def next_flush_at(self) -> float | None:
        row = self.conn().execute("SELECT min(next_flush_at) FROM groups").fetchone()
        return None if row[0] is None else float(row[0])

    def group_members(self, group_key: str) -> list[AlertRow]:
        return [
            _alert(r)
            for r in self.conn().execute(
                f"SELECT {', '.join('a.' + c.strip() for c in _ALERT_COLUMNS.split(','))} "
                "FROM group_alerts g JOIN alerts a USING (fingerprint) WHERE g.group_key = ? "
                "ORDER BY a.starts_at, a.fingerprint",
                (group_key,),
            )
        ]

    def remove_group_alerts(self, group_key: str, fingerprints: Iterable[str]) -> None:
        self.conn().executemany(
            "DELETE FROM group_alerts WHERE group_key = ? AND fingerprint = ?",
            [(group_key, fp) for fp in fingerprints],
        )

    def delete_group(self, group_key: str) -> None:
        self.conn().execute("DELETE FROM groups WHERE group_key = ?", (group_key,))
        self.conn().execute("DELETE FROM group_alerts WHERE group_key = ?", (group_key,))

    def set_group_flushed(self, group_key: str, now: float, next_flush_at: float) -> None:
        self.conn().execute(
            "UPDATE groups SET last_flush_at = ?, next_flush_at = ? WHERE group_key = ?",
            (now, next_flush_at, group_key),
        )

    def group_memberships(self) -> list[tuple[str, str]]:
        """(group_key, fingerprint) of every alert in every group."""
        return [
            (str(k), str(f))
            for k, f in self.conn().execute(
                "SELECT group_key, fingerprint FROM group_alerts ORDER BY group_key"
            )
        ]

    def list_groups(self) -> list[GroupRow]:
        return [
            GroupRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5])
            for r in self.conn().execute(
                "SELECT group_key, route_id, receiver, group_labels, next_flush_at, "
                "last_flush_at FROM groups ORDER BY group_key"
            )
        ]
