"""The published config and the generations a reload in one process tells the others."""

from __future__ import annotations

from alert_router.sql import Insert
from alert_router.store_parts.base import Conn, StoreBase

CONFIG_SCHEMA = """\
CREATE TABLE IF NOT EXISTS generations (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS published_config (
    id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, text TEXT NOT NULL);
"""
PUBLISH_CONFIG = Insert(
    "published_config", ("id", "generation", "text"), values=("1", "?", "?"), conflict_key=("id",)
)


class ConfigMixin(StoreBase):
    """Config generation: a reload in one process tells the others."""

    def generation(self, name: str) -> int:
        row = (
            self.conn().execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
        )
        return 0 if row is None else int(row[0])

    def publish_config(self, text: str) -> int:
        """Record the config text a reload accepted; returns the new config generation.

        Other processes load this text, not the file: the file may have changed again
        (even to something invalid) before they notice the reload.
        """
        with self.tx() as conn:
            generation = self._bump(conn, "config")
            conn.execute(PUBLISH_CONFIG.text(), (generation, text))
        return generation

    def published_config(self) -> tuple[int, str] | None:
        """The generation and text of the last config a reload accepted, if any."""
        row = (
            self.conn()
            .execute("SELECT generation, text FROM published_config WHERE id = 1")
            .fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]))

    @staticmethod
    def _bump(conn: Conn, name: str) -> int:
        conn.execute(
            "INSERT INTO generations (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = generations.value + 1",
            (name,),
        )
        return int(
            conn.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()[0]
        )
