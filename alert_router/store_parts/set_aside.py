"""Rows the dispatcher cannot process, kept aside with the error."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

SET_ASIDE_SCHEMA = """\
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, received_at REAL NOT NULL,
    body TEXT NOT NULL, error TEXT NOT NULL, ts REAL NOT NULL);
"""
SET_ASIDE = Insert("set_aside", ("kind", "source", "received_at", "body", "error", "ts"))


def storable(text: str) -> str:
    """`text` with what no store accepts in a string (lone surrogates, NUL) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class SetAsideMixin(StoreBase):
    """Rows the dispatcher cannot process, kept with their error."""

    def set_aside(self, rows: Iterable[tuple[str, str, float, str, str, float]]) -> None:
        """Keep rows the dispatcher cannot process: (kind, source, received_at, body, error,
        now), escaped so that they can be stored whatever they hold."""
        self.dialect.insert_many(
            self.conn(),
            SET_ASIDE,
            [
                (kind, storable(source), received_at, storable(body), storable(error), now)
                for kind, source, received_at, body, error, now in rows
            ],
        )

    def set_aside_unreadable(self, group_key: str, now: float) -> int:
        """Move the group's alerts whose stored labels or annotations do not decode to the
        set_aside table; returns how many."""
        bad = []
        for fp, labels, annots, updated_at in self.conn().execute(
            "SELECT a.fingerprint, a.labels, a.annotations, a.updated_at FROM group_alerts "
            "g JOIN alerts a USING (fingerprint) WHERE g.group_key = ?",
            (group_key,),
        ):
            try:
                json.loads(labels)
                json.loads(annots)
            except ValueError as exc:
                bad.append((fp, labels, annots, updated_at, f"{type(exc).__name__}: {exc}"))
        self.set_aside(
            ("alert", fp, updated_at, f"{labels}\n{annots}", error, now)
            for fp, labels, annots, updated_at, error in bad
        )
        for fp, *_ in bad:
            self.conn().execute("DELETE FROM group_alerts WHERE fingerprint = ?", (fp,))
            self.conn().execute("DELETE FROM alerts WHERE fingerprint = ?", (fp,))
        return len(bad)

    def list_set_aside(self, limit: int = 100) -> list[dict[str, Any]]:
        cols = ("id", "kind", "source", "received_at", "body", "error", "ts")
        return [
            dict(zip(cols, row, strict=True))
            for row in self.conn().execute(
                f"SELECT {', '.join(cols)} FROM set_aside ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]
