"""Trace events: what happened to each alert occurrence (alert_router/trace.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

TRACES_SCHEMA = """\
-- What happened to each alert occurrence, by trace id (alert_router/trace.py): its own
-- table, created on existing databases as on new ones, and kept out of the audit trail,
-- which one line per delivery attempt would drown.
CREATE TABLE IF NOT EXISTS trace_events (
    id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, ts REAL NOT NULL, stage TEXT NOT NULL,
    outcome TEXT NOT NULL, fingerprint TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trace_events_id ON trace_events (trace_id, ts);
CREATE INDEX IF NOT EXISTS trace_events_ts ON trace_events (ts);
"""
ADD_TRACE = Insert("trace_events", ("trace_id", "ts", "stage", "outcome", "fingerprint", "details"))


class TracesMixin(StoreBase):
    """Trace events (alert_router/trace.py)."""

    def add_trace(self, rows: Iterable[tuple[str, float, str, str, str, str]]) -> None:
        """Record stages: (trace_id, ts, stage, outcome, fingerprint, details JSON)."""
        items = list(rows)
        if items:
            self.dialect.insert_many(self.conn(), ADD_TRACE, items)

    def trace(self, trace_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The stages of one trace in time order."""
        return [
            {
                "ts": ts,
                "stage": stage,
                "outcome": outcome,
                "fingerprint": fp,
                "details": json.loads(details),
            }
            for ts, stage, outcome, fp, details in self.conn().execute(
                "SELECT ts, stage, outcome, fingerprint, details FROM trace_events "
                "WHERE trace_id = ? ORDER BY ts, id LIMIT ?",
                (trace_id, limit),
            )
        ]

    def gc_trace(self, before: float) -> None:
        self.conn().execute("DELETE FROM trace_events WHERE ts < ?", (before,))
