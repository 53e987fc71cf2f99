"""Incidents and the history (the audit trail)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alert_router.sql import Insert
from alert_router.store_parts.base import Conn, StoreBase

INCIDENTS_SCHEMA = """\
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL, title TEXT NOT NULL,
    server TEXT NOT NULL, severity TEXT NOT NULL, opened_at REAL NOT NULL,
    updated_at REAL NOT NULL, acknowledged_by TEXT, closed_by TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents (key, state);
CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint));
CREATE INDEX IF NOT EXISTS incident_alerts_fp ON incident_alerts (fingerprint);
"""
HISTORY_SCHEMA = """\
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    server TEXT NOT NULL, transition TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
    details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_server ON history (server, ts);
CREATE INDEX IF NOT EXISTS history_ts ON history (ts);
"""


@dataclass
class HistoryEvent:
    """One line of the audit trail."""

    ts: float
    kind: str  # alert | incident | notification | silence
    subject: str  # fingerprint, incident id, outbox id or silence id
    server: str
    transition: str
    actor: str = "router"
    reason: str = ""
    details: str = "{}"
    id: int = 0  # assigned by the store


ADD_INCIDENTS = Insert(
    "incidents",
    ("key", "state", "title", "server", "severity", "opened_at", "updated_at"),
    values=("?", "'open'", "?", "?", "?", "?", "?"),
)
LINK_INCIDENT_ALERTS = Insert(
    "incident_alerts", ("incident_id", "fingerprint"), ignore_conflicts=True
)
ADD_HISTORY = Insert(
    "history", ("ts", "kind", "subject", "server", "transition", "actor", "reason", "details")
)


class IncidentsMixin(StoreBase):
    """Incidents and the alerts linked to them."""

    def open_incidents_for(self, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
        """key -> (id, state) of the latest incident per key that is not closed."""
        out: dict[str, tuple[int, str]] = {}
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for incident_id, key, state in self.conn().execute(
                f"SELECT id, key, state FROM incidents WHERE key IN ({marks}) "
                "AND state != 'closed' ORDER BY id",
                chunk,
            ):
                out[key] = (int(incident_id), str(state))
        return out

    def create_incidents(self, rows: Iterable[tuple[str, str, str, str, float]]) -> None:
        """New open incidents: (key, title, server, severity, now)."""
        self.dialect.insert_many(
            self.conn(),
            ADD_INCIDENTS,
            [
                (key, title, server, severity, now, now)
                for key, title, server, severity, now in rows
            ],
        )

    def link_incident_alerts(self, pairs: Iterable[tuple[int, str]]) -> None:
        self.dialect.insert_many(self.conn(), LINK_INCIDENT_ALERTS, pairs)

    def set_incident_state(
        self,
        incident_id: int,
        state: str,
        now: float,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        column = {"acknowledged": "acknowledged_by", "closed": "closed_by"}.get(state)
        if column:
            self.conn().execute(
                f"UPDATE incidents SET state = ?, updated_at = ?, {column} = ?, reason = ? "
                "WHERE id = ?",
                (state, now, actor, reason, incident_id),
            )
        else:
            self.conn().execute(
                "UPDATE incidents SET state = ?, updated_at = ? WHERE id = ?",
                (state, now, incident_id),
            )

    def incidents_of_alert(self, fingerprint: str) -> list[tuple[int, str]]:
        """(id, state) of the incidents not yet resolved or closed that hold this alert."""
        return [
            (int(r[0]), str(r[1]))
            for r in self.conn().execute(
                "SELECT i.id, i.state FROM incident_alerts l"
                " JOIN incidents i ON i.id = l.incident_id"
                " WHERE l.fingerprint = ? AND i.state IN ('open', 'acknowledged')",
                (fingerprint,),
            )
        ]

    def incidents_with_alert(self, alertname: str, server: str) -> list[int]:
        """Incidents not yet closed that hold an alert of this name for this server."""
        return [
            int(r[0])
            for r in self.conn().execute(
                "SELECT DISTINCT i.id FROM incidents i JOIN incident_alerts l ON l.incident_id = "
                "i.id JOIN alerts a ON a.fingerprint = l.fingerprint WHERE i.state != 'closed' "
                "AND a.alertname = ? AND a.server = ? ORDER BY i.id",
                (alertname, server),
            )
        ]

    def incident_firing_count(self, incident_id: int, now: float) -> int:
        return int(
            self.conn()
            .execute(
                "SELECT count(*) FROM incident_alerts l JOIN alerts a USING (fingerprint) "
                "WHERE l.incident_id = ? AND a.ends_at > ?",
                (incident_id, now),
            )
            .fetchone()[0]
        )

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        rows = self._incident_rows("WHERE id = ?", (incident_id,))
        if not rows:
            return None
        incident = rows[0]
        incident["alerts"] = [
            r[0]
            for r in self.conn().execute(
                "SELECT fingerprint FROM incident_alerts WHERE incident_id = ?", (incident_id,)
            )
        ]
        return incident

    def list_incidents(
        self, *, state: str | None = None, server: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if server:
            clauses.append("server = ?")
            params.append(server)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._incident_rows(f"{where} ORDER BY id DESC LIMIT ?", (*params, limit))

    def stale_resolved_incidents(self, before: float) -> list[int]:
        return [
            int(r[0])
            for r in self.conn().execute(
                "SELECT id FROM incidents WHERE state = 'resolved' AND updated_at < ?", (before,)
            )
        ]

    def _incident_rows(self, tail: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cols = (
            "id",
            "key",
            "state",
            "title",
            "server",
            "severity",
            "opened_at",
            "updated_at",
            "acknowledged_by",
            "closed_by",
            "reason",
        )
        return [
            dict(zip(cols, row, strict=True))
            for row in self.conn().execute(
                f"SELECT {', '.join(cols)} FROM incidents {tail}", params
            )
        ]


class HistoryMixin(StoreBase):
    """The history (the audit trail)."""

    def gc_history(self, before: float) -> None:
        self.conn().execute("DELETE FROM history WHERE ts < ?", (before,))

    def add_history(self, events: Iterable[HistoryEvent]) -> None:
        self._history(self.conn(), events)

    def _history(self, conn: Conn, events: Iterable[HistoryEvent]) -> None:
        self.dialect.insert_many(
            conn,
            ADD_HISTORY,
            [
                (e.ts, e.kind, e.subject, e.server, e.transition, e.actor, e.reason, e.details)
                for e in events
            ],
        )

    def query_history(
        self,
        *,
        server: str | None = None,
        kind: str | None = None,
        subject: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
        by_id: bool = False,
    ) -> list[HistoryEvent]:
        """Events matching the filters, by time (or in recording order with by_id)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("server", server), ("kind", kind), ("subject", subject)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("ts < ?")
            params.append(until)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "id" if by_id else "ts, id"
        return [
            HistoryEvent(*r)
            for r in self.conn().execute(
                f"SELECT ts, kind, subject, server, transition, actor, reason, details, id "
                f"FROM history {where} ORDER BY {order} LIMIT ?",
                (*params, limit),
            )
        ]
