"""The router's store: every SQL statement lives here (SQLite in WAL mode).

Durability: WAL with synchronous=NORMAL (the default) survives a crash of the process
(SIGKILL, OOM) but may lose the last transactions on power loss; synchronous=FULL also
survives power loss at the cost of one fsync per commit. See docs/alert-router.md.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from alert_router.dedupe import LogEntry, entry_of_payload
from alert_router.inbox import FileInbox, Inbox
from alert_router.matchers import Matcher
from alert_router.silence import Silence
from alert_router.sql import Dialect, Insert

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS published_config (
    id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox_cursors (file TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    starts_at REAL NOT NULL, ends_at REAL NOT NULL, generator_url TEXT NOT NULL,
    updated_at REAL NOT NULL, state TEXT NOT NULL, server TEXT NOT NULL, alertname TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, ends_at);
CREATE INDEX IF NOT EXISTS alerts_name ON alerts (alertname);
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY, route_id TEXT NOT NULL, receiver TEXT NOT NULL,
    group_labels TEXT NOT NULL, created_at REAL NOT NULL, next_flush_at REAL NOT NULL,
    last_flush_at REAL);
CREATE INDEX IF NOT EXISTS groups_due ON groups (next_flush_at);
CREATE TABLE IF NOT EXISTS group_alerts (
    group_key TEXT NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (group_key, fingerprint));
CREATE INDEX IF NOT EXISTS group_alerts_fp ON group_alerts (fingerprint);
CREATE TABLE IF NOT EXISTS nflog (
    group_key TEXT NOT NULL, receiver TEXT NOT NULL, integration INTEGER NOT NULL,
    firing TEXT NOT NULL, resolved TEXT NOT NULL, sent_at REAL NOT NULL,
    PRIMARY KEY (group_key, receiver, integration));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, group_key TEXT NOT NULL, receiver TEXT NOT NULL,
    integration INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    created_at REAL NOT NULL, next_attempt_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, lease_until REAL, last_error TEXT, sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (group_key, receiver, integration);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
    created_by TEXT NOT NULL, comment TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL, title TEXT NOT NULL,
    server TEXT NOT NULL, severity TEXT NOT NULL, opened_at REAL NOT NULL,
    updated_at REAL NOT NULL, acknowledged_by TEXT, closed_by TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents (key, state);
CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint));
CREATE INDEX IF NOT EXISTS incident_alerts_fp ON incident_alerts (fingerprint);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    server TEXT NOT NULL, transition TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
    details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_server ON history (server, ts);
CREATE INDEX IF NOT EXISTS history_ts ON history (ts);
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, received_at REAL NOT NULL,
    body TEXT NOT NULL, error TEXT NOT NULL, ts REAL NOT NULL);
-- What happened to each alert occurrence, by trace id (alert_router/trace.py): its own
-- table, created on existing databases as on new ones, and kept out of the audit trail,
-- which one line per delivery attempt would drown.
CREATE TABLE IF NOT EXISTS trace_events (
    id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, ts REAL NOT NULL, stage TEXT NOT NULL,
    outcome TEXT NOT NULL, fingerprint TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trace_events_id ON trace_events (trace_id, ts);
CREATE INDEX IF NOT EXISTS trace_events_ts ON trace_events (ts);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
"""


class Conn(Protocol):
    """What the shared SQL needs of a connection (sqlite3's, or store_pg's wrapper)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


@dataclass
class AlertRow:
    """One stored alert (times in unix seconds; ends_at already includes resolve_timeout)."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float
    generator_url: str
    updated_at: float
    state: str  # what was last recorded: firing | resolved

    def firing(self, now: float) -> bool:
        """Whether the alert fires at `now`."""
        return self.ends_at > now


@dataclass
class GroupRow:
    """One aggregation group."""

    group_key: str
    route_id: str
    receiver: str
    group_labels: dict[str, str]
    next_flush_at: float
    last_flush_at: float | None


@dataclass
class OutboxRow:
    """One pending notification."""

    id: int
    group_key: str
    receiver: str
    integration: int
    kind: str
    payload: str
    created_at: float
    attempts: int


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


_ALERT_COLUMNS = (
    "fingerprint, labels, annotations, starts_at, ends_at, generator_url, updated_at, state"
)
# The inserts, described once for every dialect (alert_router.sql).
PUT_ALERTS = Insert(
    "alerts",
    (
        "fingerprint",
        "labels",
        "annotations",
        "starts_at",
        "ends_at",
        "generator_url",
        "updated_at",
        "state",
        "server",
        "alertname",
    ),
    conflict_key=("fingerprint",),
)
ADD_GROUPS = Insert(
    "groups",
    ("group_key", "route_id", "receiver", "group_labels", "created_at", "next_flush_at"),
    ignore_conflicts=True,
)
ADD_GROUP_ALERTS = Insert("group_alerts", ("group_key", "fingerprint"), ignore_conflicts=True)
PUT_NFLOG = Insert(
    "nflog",
    ("group_key", "receiver", "integration", "firing", "resolved", "sent_at"),
    conflict_key=("group_key", "receiver", "integration"),
)
PUT_SILENCE = Insert(
    "silences",
    ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "updated_at"),
    conflict_key=("id",),
)
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
ADD_TRACE = Insert("trace_events", ("trace_id", "ts", "stage", "outcome", "fingerprint", "details"))
SET_ASIDE = Insert("set_aside", ("kind", "source", "received_at", "body", "error", "ts"))
PUBLISH_CONFIG = Insert(
    "published_config", ("id", "generation", "text"), values=("1", "?", "?"), conflict_key=("id",)
)
PUT_LEASE = Insert("leases", ("name", "holder", "until"), conflict_key=("name",))


def _alert(row: tuple[Any, ...]) -> AlertRow:
    return AlertRow(
        row[0], json.loads(row[1]), json.loads(row[2]), row[3], row[4], row[5], row[6], row[7]
    )


def _readable(rows: Iterable[tuple[Any, ...]]) -> list[AlertRow]:
    """The rows that decode; one that does not (written by hand, or by a bug) is skipped
    here and reported where its group flushes, so no read fails because of it."""
    out = []
    for row in rows:
        try:
            out.append(_alert(row))
        except ValueError:
            continue
    return out


def _lenient(row: tuple[Any, ...]) -> AlertRow:
    """A row with undecodable labels or annotations read as empty ones."""
    try:
        return _alert(row)
    except ValueError:
        return AlertRow(row[0], {}, {}, row[3], row[4], row[5], row[6], row[7])


def storable(text: str) -> str:
    """`text` with what no store accepts in a string (lone surrogates, NUL) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class Store:
    """SQLite access, one connection per thread; `tx()` wraps a write transaction."""

    # Errors by which the database refuses a value (the dispatcher sets such a row aside).
    data_errors: tuple[type[BaseException], ...] = (sqlite3.DataError,)
    dialect: Dialect = Dialect()  # what this database spells its own way
    inbox: Inbox  # where requests land until merged (alert_router.inbox)

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
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

    # ---- alerts
    def get_alerts(self, fingerprints: Iterable[str]) -> dict[str, AlertRow]:
        """Stored alerts by fingerprint."""
        fps = list(fingerprints)
        out: dict[str, AlertRow] = {}
        for start in range(0, len(fps), 500):
            chunk = fps[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for alert in _readable(
                self.conn().execute(
                    f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE fingerprint IN ({marks})", chunk
                )
            ):
                out[alert.fingerprint] = alert
        return out

    def alert_times(self, fingerprints: Iterable[str]) -> dict[str, tuple[float, float, str]]:
        """(starts_at, ends_at, state) of stored alerts: all a merge needs, no JSON decoding."""
        fps = list(fingerprints)
        out: dict[str, tuple[float, float, str]] = {}
        for start in range(0, len(fps), 500):
            chunk = fps[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for fp, starts, ends, state in self.conn().execute(
                "SELECT fingerprint, starts_at, ends_at, state FROM alerts "
                f"WHERE fingerprint IN ({marks})",
                chunk,
            ):
                out[fp] = (starts, ends, state)
        return out

    def update_alerts(self, alerts: Iterable[AlertRow]) -> None:
        """Update stored alerts whose labels are unchanged (same fingerprint)."""
        self.conn().executemany(
            "UPDATE alerts SET annotations = ?, starts_at = ?, ends_at = ?, generator_url = ?, "
            "updated_at = ?, state = ? WHERE fingerprint = ?",
            [
                (
                    json.dumps(a.annotations),
                    a.starts_at,
                    a.ends_at,
                    a.generator_url,
                    a.updated_at,
                    a.state,
                    a.fingerprint,
                )
                for a in alerts
            ],
        )

    def upsert_alerts(
        self, alerts: Iterable[AlertRow], labels_json: Mapping[str, str] | None = None
    ) -> None:
        """Insert or replace alerts; `labels_json`: fingerprint -> json.dumps(labels) where
        the caller already has it."""
        encoded = labels_json or {}
        self.dialect.insert_many(
            self.conn(),
            PUT_ALERTS,
            [
                (
                    a.fingerprint,
                    encoded.get(a.fingerprint) or json.dumps(a.labels),
                    json.dumps(a.annotations),
                    a.starts_at,
                    a.ends_at,
                    a.generator_url,
                    a.updated_at,
                    a.state,
                    a.labels.get("server", ""),
                    a.labels.get("alertname", ""),
                )
                for a in alerts
            ],
        )

    def all_alerts(self) -> list[AlertRow]:
        return _readable(
            self.conn().execute(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY starts_at")
        )

    def firing_page(self, now: float, limit: int, offset: int) -> list[AlertRow]:
        """Firing alerts, oldest first, one page of them (an unfiltered read decodes no more)."""
        return _readable(
            self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE ends_at > ? "
                "ORDER BY starts_at, fingerprint LIMIT ? OFFSET ?",
                (now, limit, offset),
            )
        )

    def alerts_named(self, alertname: str) -> list[AlertRow]:
        """The alerts with this alertname (indexed: an API filter need not read them all)."""
        return _readable(
            self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alertname = ? ORDER BY starts_at",
                (alertname,),
            )
        )

    def firing_labels(
        self, now: float, alertnames: set[str] | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """(fingerprint, labels) of the alerts firing at `now`, optionally only these names."""
        if alertnames is None:
            rows = self.conn().execute(
                "SELECT fingerprint, labels FROM alerts WHERE ends_at > ?", (now,)
            )
        else:
            names = sorted(alertnames)
            rows = self.conn().execute(
                "SELECT fingerprint, labels FROM alerts WHERE ends_at > ? AND alertname IN "
                f"({','.join('?' * len(names))})",
                (now, *names),
            )
        out = []
        for fp, labels in rows:
            try:
                out.append((fp, json.loads(labels)))
            except ValueError:  # an unreadable row is reported where its group flushes
                continue
        return out

    def newly_resolved(self, now: float) -> list[AlertRow]:
        """Alerts recorded as firing whose end time has passed (an undecodable one still
        resolves, with empty labels)."""
        return [
            _lenient(r)
            for r in self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state = 'firing' AND ends_at <= ?",
                (now,),
            )
        ]

    def set_alert_state(self, fingerprints: Iterable[str], state: str) -> None:
        self.conn().executemany(
            "UPDATE alerts SET state = ? WHERE fingerprint = ?",
            [(state, fp) for fp in fingerprints],
        )

    def gc_alerts(self, resolved_before: float) -> int:
        """Forget resolved alerts no group still holds."""
        cur = self.conn().execute(
            "DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ? AND fingerprint NOT IN "
            "(SELECT fingerprint FROM group_alerts)",
            (resolved_before,),
        )
        return int(cur.rowcount)

    def count_alerts(self, now: float) -> int:
        return int(
            self.conn()
            .execute("SELECT count(*) FROM alerts WHERE ends_at > ?", (now,))
            .fetchone()[0]
        )

    # ---- aggregation groups
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

    # ---- notification log (what was notified to whom)
    def get_nflog(self, group_key: str, receiver: str, integration: int) -> LogEntry | None:
        row = (
            self.conn()
            .execute(
                "SELECT firing, resolved, sent_at FROM nflog WHERE group_key = ? AND receiver = ? "
                "AND integration = ?",
                (group_key, receiver, integration),
            )
            .fetchone()
        )
        if row is None:
            return None
        return LogEntry(frozenset(json.loads(row[0])), frozenset(json.loads(row[1])), row[2])

    def put_nflog(self, group_key: str, receiver: str, integration: int, entry: LogEntry) -> None:
        self.conn().execute(
            PUT_NFLOG.text(),
            (
                group_key,
                receiver,
                integration,
                json.dumps(sorted(entry.firing)),
                json.dumps(sorted(entry.resolved)),
                entry.sent_at,
            ),
        )

    def latest_notified(self, group_key: str, receiver: str, integration: int) -> LogEntry | None:
        """What the receiver has been or is being told: the newest notification still queued
        or being sent, else the log of the last successful send."""
        row = (
            self.conn()
            .execute(
                "SELECT payload, created_at FROM outbox WHERE group_key = ? AND receiver = ? AND "
                "integration = ? AND status IN ('pending', 'sending') ORDER BY id DESC LIMIT 1",
                (group_key, receiver, integration),
            )
            .fetchone()
        )
        if row is not None:
            return entry_of_payload(json.loads(row[0]), float(row[1]))
        return self.get_nflog(group_key, receiver, integration)

    def gc_nflog(self, before: float) -> None:
        self.conn().execute("DELETE FROM nflog WHERE sent_at < ? AND firing = '[]'", (before,))

    # ---- outbox
    def enqueue(
        self, group_key: str, receiver: str, integration: int, kind: str, payload: str, now: float
    ) -> None:
        self.conn().execute(
            "INSERT INTO outbox (group_key, receiver, integration, kind, payload, created_at, "
            "next_attempt_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
            (group_key, receiver, integration, kind, payload, now, now),
        )

    def supersede_pending(self, group_key: str, receiver: str, integration: int) -> int:
        """Drop the group's notifications still waiting (not being sent) for a newer one."""
        cur = self.conn().execute(
            "DELETE FROM outbox WHERE group_key = ? AND receiver = ? AND integration = ? "
            "AND status = 'pending'",
            (group_key, receiver, integration),
        )
        return int(cur.rowcount)

    def claim_due(self, now: float, limit: int, lease: float) -> list[OutboxRow]:
        """Take due notifications for sending; the lease lets another worker retake them."""
        with self.tx() as conn:
            rows = conn.execute(
                "UPDATE outbox SET status = 'sending', lease_until = ? WHERE id IN ("
                "SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= ?) "
                "OR (status = 'sending' AND lease_until <= ?) ORDER BY id LIMIT ?) "
                "RETURNING id, group_key, receiver, integration, kind, payload, created_at, "
                "attempts",
                (now + lease, now, now, limit),
            ).fetchall()
        return sorted((OutboxRow(*r) for r in rows), key=lambda r: r.id)

    def claim_due_per_receiver(
        self,
        now: float,
        lease: float,
        free: dict[str, int],
        per_receiver: int,
        busy: set[tuple[str, str, int]],
    ) -> list[OutboxRow]:
        """Take due notifications, oldest first, at most free[receiver] (else per_receiver)
        per receiver and one per group and integration not in `busy`."""
        with self.tx() as conn:
            candidates = conn.execute(
                "SELECT id, receiver, group_key, integration FROM (SELECT id, receiver, "
                "group_key, integration, ROW_NUMBER() OVER (PARTITION BY receiver ORDER BY id) "
                "AS n FROM outbox WHERE (status = 'pending' AND next_attempt_at <= ?) OR "
                "(status = 'sending' AND lease_until <= ?)) due WHERE n <= ? ORDER BY id",
                (now, now, per_receiver * 4),
            ).fetchall()
            taken: list[int] = []
            left = dict(free)
            seen = set(busy)
            for outbox_id, receiver, group_key, integration in candidates:
                key = (group_key, receiver, integration)
                if left.get(receiver, per_receiver) <= 0 or key in seen:
                    continue
                left[receiver] = left.get(receiver, per_receiver) - 1
                seen.add(key)
                taken.append(outbox_id)
            if not taken:
                return []
            rows = conn.execute(
                "UPDATE outbox SET status = 'sending', lease_until = ? WHERE id IN ("
                f"{','.join('?' * len(taken))}) RETURNING id, group_key, receiver, integration, "
                "kind, payload, created_at, attempts",
                (now + lease, *taken),
            ).fetchall()
        return sorted((OutboxRow(*r) for r in rows), key=lambda r: r.id)

    def release_claim(self, outbox_id: int) -> None:
        """Give a claimed notification back unsent (this process lost the lease)."""
        self.conn().execute(
            "UPDATE outbox SET status = 'pending', lease_until = NULL "
            "WHERE id = ? AND status = 'sending'",
            (outbox_id,),
        )

    def release_claims(self) -> int:
        """Make every in-flight notification pending again (at start-up, before sending)."""
        cur = self.conn().execute(
            "UPDATE outbox SET status = 'pending', lease_until = NULL WHERE status = 'sending'"
        )
        return int(cur.rowcount)

    def mark_sent(
        self,
        outbox_id: int,
        now: float,
        event: HistoryEvent,
        nflog: tuple[str, str, int, LogEntry] | None = None,
    ) -> None:
        """Record a delivery and, with it, the notification log entry it stands for."""
        with self.tx() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                " lease_until = NULL, payload = '' WHERE id = ?",
                (now, outbox_id),
            )
            if nflog is not None:
                self.put_nflog(*nflog)
            self._history(conn, [event])

    def mark_retry(self, outbox_id: int, next_attempt_at: float, error: str) -> None:
        self.conn().execute(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = ?, "
            "lease_until = NULL, last_error = ? WHERE id = ?",
            (next_attempt_at, error, outbox_id),
        )

    def mark_failed(self, outbox_id: int, error: str, event: HistoryEvent) -> None:
        with self.tx() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, "
                "lease_until = NULL, last_error = ? WHERE id = ?",
                (error, outbox_id),
            )
            self._history(conn, [event])

    def outbox_counts(self) -> dict[str, int]:
        return {
            status: count
            for status, count in self.conn().execute(
                "SELECT status, count(*) FROM outbox GROUP BY status"
            )
        }

    def next_outbox_attempt(self) -> float | None:
        row = (
            self.conn()
            .execute("SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'")
            .fetchone()
        )
        return None if row[0] is None else float(row[0])

    def gc_outbox(self, sent_before: float) -> None:
        self.conn().execute(
            "DELETE FROM outbox WHERE status = 'sent' AND sent_at < ?", (sent_before,)
        )

    # ---- silences
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

    # ---- incidents
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

    # ---- history (the audit trail)
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

    # ---- traces (alert_router/trace.py)
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

    def requeue_failed(self, outbox_ids: Iterable[int], now: float) -> list[int]:
        """Make given-up notifications pending again, as if queued now (their give-up
        clock restarts); returns the ids requeued. One the group has queued a newer
        notification since is left: sent now, it would tell an older state last."""
        ids = sorted(set(outbox_ids))
        if not ids:
            return []
        with self.tx() as conn:
            rows = conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "created_at = ?, lease_until = NULL WHERE status = 'failed' AND payload != '' "
                "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.group_key = outbox.group_key "
                "AND o.receiver = outbox.receiver AND o.integration = outbox.integration "
                f"AND o.id > outbox.id) AND id IN ({','.join('?' * len(ids))}) RETURNING id",
                (now, now, *ids),
            ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def gc_trace(self, before: float) -> None:
        self.conn().execute("DELETE FROM trace_events WHERE ts < ?", (before,))

    # ---- config generation: a reload in one process tells the others
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

    # ---- leadership between processes sharing one database
    def lease_holder(self, name: str) -> str | None:
        """Who holds (or last held) the named lease."""
        row = self.conn().execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def holder_gone(self, holder: str, holder_dead: Callable[[str], bool]) -> bool:
        """Whether a lease holder is known to be dead (not merely late)."""
        return holder_dead(holder)

    def try_lease(
        self,
        name: str,
        holder: str,
        now: float,
        ttl: float,
        holder_dead: Callable[[str], bool] = lambda _: False,
    ) -> bool:
        """Take or renew the named lease; False while another live holder's lease runs."""
        with self.tx() as conn:
            row = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now and not holder_dead(row[0]):
                return False
            conn.execute(PUT_LEASE.text(), (name, holder, now + ttl))
        return True
