"""The router's store on PostgreSQL, for several replicas sharing one database.

PgStore runs the SQL of store.Store (its aggregates, alert_router/store_parts/), written for
both databases; what PostgreSQL spells its own way (placeholders, types, inserting many rows)
is alert_router.sql.PostgresDialect.
What differs in behaviour:

- Write transactions take one advisory lock, so they run one at a time across every
  replica, as SQLite's BEGIN IMMEDIATE does (the lease, outbox claims, config
  publication and incident updates read then write and rely on that).
- The inbox is a table (PgInbox): a request is one autocommitted INSERT, durable before
  the 200; the dispatcher deletes exactly the rows it merged, in its transaction.
- A lease holder is dead when its database session is gone: each holder keeps an advisory
  lock on its session, so a replica on any host is judged by the server that sees it, not
  by a hostname and pid that mean nothing on another host.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg

from alert_router.inbox import INBOX_SCHEMA, Inbox, InboxRow
from alert_router.sql import PostgresDialect
from alert_router.store import SCHEMA, Conn, Store, StoreBase
from stacksense_common.secret import Secret, reveal

# Every write transaction of every replica takes this transaction-level advisory lock.
WRITE_LOCK_KEY = 0x5354_4B53_0001
SCHEMA_LOCK_KEY = 0x5354_4B53_0002


class StoreConnectError(RuntimeError):
    """The database cannot be reached (the message names the host, never the password)."""


class InboxMergedElsewhere(RuntimeError):
    """The inbox rows a dispatcher read were merged by another one meanwhile."""


DIALECT = PostgresDialect(SCHEMA + INBOX_SCHEMA)


def pg_schema(sqlite_schema: str) -> str:
    """SQLite's DDL in PostgreSQL types (the dialect's schema)."""
    return DIALECT.schema(sqlite_schema)


def lock_key(text: str) -> int:
    """A 64-bit advisory lock key for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


class PgConn:
    """A psycopg connection (autocommit) that takes store.py's SQL (`?` placeholders)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.holding: set[str] = set()  # lease holders whose session lock this session has

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[Any]:
        return self.raw.execute(DIALECT.sql(sql), parameters)  # type: ignore[arg-type]

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        """Run `sql` for each parameter row (inserts go through DIALECT.insert_many)."""
        cur = self.raw.cursor()
        cur.executemany(DIALECT.sql(sql), parameters)  # type: ignore[arg-type]
        return cur


def describe(url: str) -> str:
    """user@host:port/db of a storage url, for messages."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{parts.hostname}:{parts.port or 5432}/{parts.path.lstrip('/')}"


class PgInbox(Inbox):
    """The inbox as one table (the only part is "inbox"). A request is one autocommitted
    INSERT. mark_merged deletes exactly the rows read, in the dispatcher's transaction: ids
    of concurrent inserts commit out of order, so "everything up to id N" would skip late
    commits."""

    conflict = (InboxMergedElsewhere,)

    def __init__(self, conn: Callable[[], PgConn]) -> None:
        self._conn = conn
        self._local = threading.local()  # ids of the rows this thread read last

    def add(self, source: str, body: str, now: float, form: str = "normalised") -> None:
        self._conn().execute(
            "INSERT INTO inbox (source, received_at, body, form) VALUES (?, ?, ?, ?)",
            (source, now, body, form),
        )

    def read(self, limit: int) -> tuple[str, list[InboxRow]] | None:
        rows = (
            self._conn()
            .execute(
                "SELECT id, source, received_at, body, form FROM inbox ORDER BY id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        self._local.read_ids = [int(r[0]) for r in rows]
        return ("inbox", rows) if rows else None

    def mark_merged(self, part: str, last_id: int) -> None:
        ids = [i for i in getattr(self._local, "read_ids", []) if i <= last_id]
        cur = self._conn().execute("DELETE FROM inbox WHERE id = ANY(?)", (ids,))
        if cur.rowcount != len(ids):
            # Another dispatcher (a leader that lost its lease mid-step) merged them first:
            # abort this transaction rather than merge the same requests twice.
            raise InboxMergedElsewhere(
                f"{len(ids) - cur.rowcount} inbox rows were merged "
                "by another dispatcher; this merge is rolled back"
            )
        # Merged one by one after a row was refused: the next call covers the later rows only.
        self._local.read_ids = [i for i in getattr(self._local, "read_ids", []) if i > last_id]

    def trim(self, part: str, last_id: int) -> None:
        """Nothing left to do: mark_merged deleted the rows."""

    def depth(self) -> int:
        row = self._conn().execute("SELECT count(*) FROM inbox").fetchone()
        return int(row[0]) if row else 0


class PgStore(Store):
    """The store's interface on PostgreSQL: one autocommit connection per thread."""

    data_errors = (psycopg.DataError,)
    dialect = DIALECT

    def __init__(
        self,
        url: str,
        *,
        password: Secret | str | None = "",
        connect_timeout: float = 10.0,
        idle_tx_timeout: float = 60.0,
    ) -> None:
        # The shared initialiser (path, per-thread state), not Store's: that one opens SQLite.
        StoreBase.__init__(self, url)
        self._password = reveal(password) or ""
        self._idle_tx_timeout = idle_tx_timeout
        self._connect_timeout = connect_timeout
        self._conns: list[PgConn] = []
        self.inbox = PgInbox(self.conn)
        conn = self.conn()
        with conn.raw.transaction():
            # Replicas starting together would race on CREATE TABLE IF NOT EXISTS.
            conn.raw.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
            conn.raw.execute(DIALECT.schema(SCHEMA + INBOX_SCHEMA).encode())

    def _open(self) -> PgConn:
        try:
            raw = psycopg.connect(
                self.path,
                password=self._password or None,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout)),
                application_name="stacksense-router",
            )
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if self._password:
                reason = reason.replace(self._password, "<secret>")
            raise StoreConnectError(
                f"storage.url: cannot connect to PostgreSQL at {describe(self.path)}: {reason}"
            ) from None
        # A replica cut off mid-transaction would hold the write lock until TCP gives up
        # (hours): the server ends such a transaction instead. None of ours idles for long.
        raw.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
            (f"{round(self._idle_tx_timeout * 1000)}ms",),
        )
        conn = PgConn(raw)
        with self._lock:
            self._conns.append(conn)
        return conn

    def conn(self) -> PgConn:
        """This thread's connection (opened on first use, reopened after it broke)."""
        conn: PgConn | None = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed:  # a broken connection counts as closed
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn = self._local.conn = self._open()
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.raw.close()
            self._conns.clear()
        self._local = threading.local()

    @contextmanager
    def tx(self) -> Iterator[Conn]:
        """A write transaction; one at a time over all replicas (see the module doc)."""
        conn = self.conn()
        with conn.raw.transaction():
            conn.raw.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            yield conn

    # ---- leadership
    def try_lease(
        self,
        name: str,
        holder: str,
        now: float,
        ttl: float,
        holder_dead: Callable[[str], bool] = lambda _: False,
    ) -> bool:
        """Take or renew the lease; a holder whose database session ended is dead.

        The caller's holder_dead (hostname and pid) is not used: on another host it could
        name a live replica's pid as gone.
        """
        conn = self.conn()
        if holder not in conn.holding:
            conn.raw.execute("SELECT pg_advisory_lock(%s)", (lock_key(holder),))
            conn.holding.add(holder)
        return super().try_lease(name, holder, now, ttl, self._session_gone)

    def holder_gone(self, holder: str, holder_dead: Callable[[str], bool]) -> bool:
        """A holder is dead when its database session ended (on any host)."""
        return self._session_gone(holder)

    def _session_gone(self, holder: str) -> bool:
        conn = self.conn()
        if holder in conn.holding:  # another holder of this very session (tests): alive
            return False
        key = lock_key(holder)
        row = conn.raw.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row is None or not row[0]:
            return False
        conn.raw.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return True
