"""The inbox: where every accepted request lands, durable before the 200, until the
dispatcher merges it into alerts and groups.

One interface, two implementations: `FileInbox` (SQLite: a file per process, so request
threads never wait for the dispatcher's transactions on the main database, nor for other
processes) and store_pg.PgInbox (PostgreSQL: one table). The dispatcher's cycle is

    part, rows = inbox.read(limit)
    with store.tx():            # the merge
        ...
        inbox.mark_merged(part, rows[-1][0])
    inbox.trim(part, rows[-1][0])

so a crash anywhere re-reads nothing that was merged and loses nothing that was not.
"""

from __future__ import annotations

import glob
import os
import socket
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

INBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, received_at REAL NOT NULL,
    body TEXT NOT NULL, form TEXT NOT NULL);
"""
InboxRow = tuple[int, str, float, str, str]  # id, source, received_at, body, form


def process_alive(host: str, pid: int) -> bool:
    """Whether process `pid` of `host` may still run (always True for another host)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Inbox(ABC):
    """Accepted requests not yet merged. `part` names where a batch was read from."""

    # The error mark_merged raises when another dispatcher merged the same rows first (the
    # dispatcher then rolls back and never sets them aside).
    conflict: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def add(self, source: str, body: str, now: float, form: str = "normalised") -> None:
        """Store one accepted request's alerts; committed before returning.

        form "normalised": a JSON list of normalised alerts; "postable": the request body
        itself, already validated (saves re-encoding on the hot path).
        """

    @abstractmethod
    def read(self, limit: int) -> tuple[str, list[InboxRow]] | None:
        """Up to `limit` unmerged requests, oldest first, from one part; None when none."""

    @abstractmethod
    def mark_merged(self, part: str, last_id: int) -> None:
        """Inside the dispatcher's transaction: the rows read from `part` up to `last_id`
        are merged (never read again once it commits)."""

    @abstractmethod
    def trim(self, part: str, last_id: int) -> None:
        """After that commit: free what the merged rows took."""

    @abstractmethod
    def depth(self) -> int:
        """Accepted requests not yet merged, over every part."""


class FileInbox(Inbox):
    """SQLite: each process appends to its own file next to the database; the main
    database keeps, per file, the last id merged (inbox_cursors)."""

    def __init__(
        self, db_path: str, connect: Callable[[str], sqlite3.Connection], main: Callable[[], Any]
    ) -> None:
        self.db_path = db_path
        self._connect = connect  # opens (and registers for closing) a connection
        self._main = main  # this thread's connection to the main database
        self.path = (
            f"{db_path}.inbox.{uuid.uuid4().hex[:8]}.{os.getpid()}.{socket.gethostname()}.db"
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._ready = False
        self._rotation = 0

    def _conn(self, path: str) -> sqlite3.Connection:
        conns: dict[str, sqlite3.Connection] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(path)
        if conn is None:
            if not os.path.exists(path):  # private like the main file (SQLite would use 0644)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = conns[path] = self._connect(path)
        return conn

    def forget_connections(self) -> None:
        """After the store closed every connection: open new ones on next use."""
        self._local = threading.local()

    def add(self, source: str, body: str, now: float, form: str = "normalised") -> None:
        conn = self._conn(self.path)
        with self._lock:
            if not self._ready:
                conn.executescript(INBOX_SCHEMA)
                self._ready = True
            conn.execute(
                "INSERT INTO inbox (source, received_at, body, form) VALUES (?, ?, ?, ?)",
                (source, now, body, form),
            )

    def files(self) -> list[str]:
        """Every process's inbox file for this database."""
        return sorted(glob.glob(glob.escape(self.db_path) + ".inbox.*.db"))

    def _cursor(self, name: str) -> int:
        row = (
            self._main()
            .execute("SELECT last_id FROM inbox_cursors WHERE file = ?", (name,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def _pending(self, path: str, limit: int) -> list[InboxRow]:
        try:
            return list(
                self._conn(path).execute(
                    "SELECT id, source, received_at, body, form FROM inbox WHERE id > ? "
                    "ORDER BY id LIMIT ?",
                    (self._cursor(os.path.basename(path)), limit),
                )
            )
        except sqlite3.OperationalError:  # created but its table not yet: nothing to read
            return []

    def read(self, limit: int) -> tuple[str, list[InboxRow]] | None:
        """Up to `limit` unmerged requests from one file (files taken in turn)."""
        files = self.files()
        self._rotation += 1
        for i in range(len(files)):
            path = files[(self._rotation + i) % len(files)]
            rows = self._pending(path, limit)
            if rows:
                return path, rows
            self._forget_if_abandoned(path)
        return None

    def mark_merged(self, part: str, last_id: int) -> None:
        self._main().execute(
            "INSERT INTO inbox_cursors (file, last_id) VALUES (?, ?) "
            "ON CONFLICT (file) DO UPDATE SET last_id = excluded.last_id",
            (os.path.basename(part), last_id),
        )

    def trim(self, part: str, last_id: int) -> None:
        """Delete merged rows (after the main commit: a crash in between re-reads nothing)."""
        conn = self._conn(part)
        if part == self.path:
            with self._lock:
                conn.execute("DELETE FROM inbox WHERE id <= ?", (last_id,))
        else:
            conn.execute("DELETE FROM inbox WHERE id <= ?", (last_id,))

    def _forget_if_abandoned(self, path: str) -> None:
        """Remove a drained inbox file whose process is gone."""
        if path == self.path:
            return
        _rand, pid, host = os.path.basename(path)[
            len(os.path.basename(self.db_path)) + 7 : -3
        ].split(".", 2)
        if not pid.isdigit() or process_alive(host, int(pid)):
            return
        conns: dict[str, sqlite3.Connection] = getattr(self._local, "conns", {})
        conn = conns.pop(path, None)
        if conn is not None:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
        self._main().execute("DELETE FROM inbox_cursors WHERE file = ?", (os.path.basename(path),))

    def depth(self) -> int:
        total = 0
        for path in self.files():
            # A short-lived read connection: files of dead processes disappear over time.
            try:
                conn = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True, timeout=5.0)
            except sqlite3.OperationalError:
                continue
            try:
                total += int(
                    conn.execute(
                        "SELECT count(*) FROM inbox WHERE id > ?",
                        (self._cursor(os.path.basename(path)),),
                    ).fetchone()[0]
                )
            except sqlite3.OperationalError:
                continue
            finally:
                conn.close()
        return total
