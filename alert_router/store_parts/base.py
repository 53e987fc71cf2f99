"""What every aggregate of the store is written against: a connection, a write
transaction and the SQL dialect; the connection handling is the subclasses' own
(alert_router.store.Store for SQLite, alert_router.store_pg.PgStore for PostgreSQL)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, Protocol

from alert_router.inbox import Inbox
from alert_router.sql import Dialect

# The SQLite inbox's cursors (alert_router.inbox.FileInbox), created with the store's schema.
INBOX_CURSORS_SCHEMA = """\
CREATE TABLE IF NOT EXISTS inbox_cursors (file TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
"""


class Conn(Protocol):
    """What the shared SQL needs of a connection (sqlite3's, or store_pg's wrapper)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


class StoreBase(ABC):
    """The shared state and interface of the store's aggregates (the mixins of store_parts)."""

    # Errors by which the database refuses a value (the dispatcher sets such a row aside).
    data_errors: tuple[type[BaseException], ...]
    dialect: Dialect  # what this database spells its own way
    inbox: Inbox  # where requests land until merged (alert_router.inbox)

    def __init__(self, path: str) -> None:
        """What every store sets up before connecting: its location, per-thread state."""
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()

    @abstractmethod
    def conn(self) -> Conn:
        """This thread's connection to the main database (opened on first use)."""

    @abstractmethod
    def tx(self) -> AbstractContextManager[Conn]:
        """A write transaction (rolled back on error)."""
