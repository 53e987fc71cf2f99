"""The outbox: notifications queued, being sent, sent or given up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alert_router.dedupe import LogEntry
from alert_router.store_parts.incidents import HistoryEvent, HistoryMixin
from alert_router.store_parts.nflog import NflogMixin

OUTBOX_SCHEMA = """\
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, group_key TEXT NOT NULL, receiver TEXT NOT NULL,
    integration INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    created_at REAL NOT NULL, next_attempt_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, lease_until REAL, last_error TEXT, sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (group_key, receiver, integration);
"""


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


class OutboxMixin(NflogMixin, HistoryMixin):
    """Notifications queued for sending, claimed, sent, retried or given up."""

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

    def gc_outbox(self, sent_before: float, failed_before: float) -> None:
        """Forget sent notifications, and given-up ones whose last attempt was due before
        failed_before (until then an operator can queue them again)."""
        conn = self.conn()
        conn.execute("DELETE FROM outbox WHERE status = 'sent' AND sent_at < ?", (sent_before,))
        conn.execute(
            "DELETE FROM outbox WHERE status = 'failed' AND next_attempt_at < ?", (failed_before,)
        )

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
