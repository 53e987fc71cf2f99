"""Silences."""

from __future__ import annotations

import json

from alert_router.matchers import Matcher
from alert_router.silence import Silence
from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

SILENCES_SCHEMA = """\
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
    created_by TEXT NOT NULL, comment TEXT NOT NULL, updated_at REAL NOT NULL);
"""
PUT_SILENCE = Insert(
    "silences",
    ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "updated_at"),
    conflict_key=("id",),
)


class SilencesMixin(StoreBase):
    """Silences."""

    def put_silence(self, silence: Silence) -> None:
        self.conn().execute(
            PUT_SILENCE.text(),
            (
                silence.id,
                json.dumps([m.to_api() for m in silence.matchers]),
                silence.starts_at,
                silence.ends_at,
                silence.created_by,
                silence.comment,
                silence.updated_at,
            ),
        )

    def list_silences(self) -> list[Silence]:
        out = []
        for row in self.conn().execute(
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, updated_at "
            "FROM silences ORDER BY starts_at"
        ):
            matchers = tuple(
                Matcher.create(m["name"], m["value"], is_regex=m["isRegex"], is_equal=m["isEqual"])
                for m in json.loads(row[1])
            )
            out.append(Silence(row[0], matchers, row[2], row[3], row[4], row[5], row[6]))
        return out

    def get_silence(self, silence_id: str) -> Silence | None:
        return next((s for s in self.list_silences() if s.id == silence_id), None)

    def gc_silences(self, expired_before: float) -> None:
        self.conn().execute("DELETE FROM silences WHERE ends_at < ?", (expired_before,))
