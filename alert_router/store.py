"""The router's store (SQLite in WAL mode): the connection handling, over the aggregates of
alert_router/store_parts/ (one module each, with its statements).

Durability: WAL with synchronous=NORMAL (the default) survives a crash of the process
(SIGKILL, OOM) but may lose the last transactions on power loss; synchronous=FULL also
survives power loss at the cost of one fsync per commit. See docs/alert-router.md.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alert_router.inbox import FileInbox, Inbox
from alert_router.sql import Dialect
from alert_router.store_parts.alerts import ALERTS_SCHEMA, PUT_ALERTS, AlertRow, AlertsMixin
from alert_router.store_parts.base import INBOX_CURSORS_SCHEMA, Conn, StoreBase
from alert_router.store_parts.config import CONFIG_SCHEMA, PUBLISH_CONFIG, ConfigMixin
from alert_router.store_parts.groups import (
    ADD_GROUP_ALERTS,
    ADD_GROUPS,
    GROUPS_SCHEMA,
    GroupRow,
    GroupsMixin,
)
from alert_router.store_parts.incidents import (
    ADD_HISTORY,
    ADD_INCIDENTS,
    HISTORY_SCHEMA,
    INCIDENTS_SCHEMA,
    LINK_INCIDENT_ALERTS,
    HistoryEvent,
    HistoryMixin,
    IncidentsMixin,
)
from alert_router.store_parts.leases import LEASES_SCHEMA, PUT_LEASE, LeasesMixin
from alert_router.store_parts.nflog import NFLOG_SCHEMA, PUT_NFLOG, NflogMixin
from alert_router.store_parts.outbox import OUTBOX_SCHEMA, OutboxMixin, OutboxRow
from alert_router.store_parts.set_aside import SET_ASIDE, SET_ASIDE_SCHEMA, SetAsideMixin, storable
from alert_router.store_parts.silences import PUT_SILENCE, SILENCES_SCHEMA, SilencesMixin
from alert_router.store_parts.traces import ADD_TRACE, TRACES_SCHEMA, TracesMixin

__all__ = [
    "ADD_GROUPS",
    "ADD_GROUP_ALERTS",
    "ADD_HISTORY",
    "ADD_INCIDENTS",
    "ADD_TRACE",
    "LINK_INCIDENT_ALERTS",
    "PUBLISH_CONFIG",
    "PUT_ALERTS",
    "PUT_LEASE",
    "PUT_NFLOG",
    "PUT_SILENCE",
    "SCHEMA",
    "SET_ASIDE",
    "AlertRow",
    "Conn",
    "GroupRow",
    "HistoryEvent",
    "OutboxRow",
    "Store",
    "StoreBase",
    "storable",
]

# Every aggregate's tables, in the order they have always been created.
SCHEMA = "\n" + "".join(
    (
        CONFIG_SCHEMA,
        INBOX_CURSORS_SCHEMA,
        ALERTS_SCHEMA,
        GROUPS_SCHEMA,
        NFLOG_SCHEMA,
        OUTBOX_SCHEMA,
        SILENCES_SCHEMA,
        INCIDENTS_SCHEMA,
        HISTORY_SCHEMA,
        SET_ASIDE_SCHEMA,
        TRACES_SCHEMA,
        LEASES_SCHEMA,
    )
)


class Store(
    SetAsideMixin,
    AlertsMixin,
    GroupsMixin,
    OutboxMixin,
    NflogMixin,
    SilencesMixin,
    IncidentsMixin,
    HistoryMixin,
    TracesMixin,
    ConfigMixin,
    LeasesMixin,
):
    """SQLite access, one connection per thread; `tx()` wraps a write transaction."""

    # Errors by which the database refuses a value (the dispatcher sets such a row aside).
    data_errors: tuple[type[BaseException], ...] = (sqlite3.DataError,)
    dialect: Dialect = Dialect()  # what this database spells its own way
    inbox: Inbox  # where requests land until merged (alert_router.inbox)

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        super().__init__(path)
        self.synchronous = synchronous
        self._all: list[sqlite3.Connection] = []
        # Writers of this process queue here instead of in SQLite's busy handler, which sleeps
        # in steps of milliseconds and would dominate latency under concurrent requests.
        self.write_lock = threading.RLock()
        if path != ":memory:" and not os.path.exists(path):
            # The store holds the published config (with its credentials) and alert data:
            # readable by the router's user only, like the config file should be.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._local.conn = self._connect(path)
        self._local.conn.executescript(SCHEMA)
        self.inbox: Inbox = FileInbox(path, self._connect, self.conn)

    def _connect(self, path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        # WAL is a property of the file: set it once. Switching the journal mode
        # needs an exclusive lock and SQLite does not run the busy handler for it,
        # so a thread opening the file while another writes gets "database is
        # locked" at once (seen as 500s under load): retry briefly instead.
        for attempt in range(100):
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.005 * (attempt + 1))
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        with self._lock:
            self._all.append(conn)
        return conn

    def conn(self) -> Conn:
        """This thread's connection to the main database (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect(self.path)
        return conn

    def close(self) -> None:
        """Close every connection this store opened (this process's inbox file stays)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
        if isinstance(self.inbox, FileInbox):
            self.inbox.forget_connections()

    @contextmanager
    def tx(self) -> Iterator[Conn]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        conn = self.conn()
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
