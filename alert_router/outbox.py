"""The outbox worker: the one place that retries. Claim due rows, then the pipeline's send
with retry and record stages (alert_router.pipeline) for each."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alert_router import pipeline
from alert_router.config import RouterConfig
from alert_router.metrics import RouterMetrics
from alert_router.notify.base import Notifier
from alert_router.store import HistoryEvent, OutboxRow, Store
from alert_router.trace import log_ids, trace_of
from alert_router.trace import row as trace_row

log = logging.getLogger(__name__)


def _traces(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(trace id, fingerprint) of each alert of a notification; tracing never stops a send,
    so a row queued by an older version (or damaged) gives what it can."""
    out = []
    for a in payload.get("alerts") or []:
        try:
            out.append(
                (
                    trace_of(a["labels"], a["annotations"], float(a["startsAt"])),
                    str(a["fingerprint"]),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


class Outbox:
    """Sends claimed notifications through the receivers' notifiers.

    `step` sends what is due and returns when done (tests drive it with their clock). The
    runner uses `pump`: each receiver has its own worker threads and claims only as many
    rows as it has idle workers, so a hung receiver holds its own rows and nobody else's.
    """

    def __init__(
        self,
        store: Store,
        config: Callable[[], RouterConfig],
        notifiers: Callable[[str], Sequence[Notifier]],
        metrics: RouterMetrics,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.config = config
        self.notifiers = notifiers
        self.metrics = metrics
        self.rand = rand
        # Fencing: checked right before each send; the runner answers "do I still hold
        # the dispatcher lease?" so a process that lost it never sends.
        self.may_send: Callable[[], bool] = lambda: True
        self.on_done: Callable[[], None] = lambda: None  # a worker became idle
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._busy: dict[str, int] = {}  # receiver -> rows claimed and not yet done
        self._busy_groups: set[tuple[str, str, int]] = set()

    def close(self, *, wait: bool = True) -> None:
        pools = [self._pool, *self._pools.values()]
        self._pool = None
        self._pools = {}
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=wait, cancel_futures=True)

    def busy(self) -> bool:
        """Whether a send of this process is claimed and not yet done."""
        with self._lock:
            return bool(self._busy)

    def step(self, now: float, *, limit: int = 200) -> int:
        """Send every due notification once; returns how many were attempted."""
        cfg = self.config()
        rows = self.store.claim_due(now, limit, cfg.delivery.lease)
        if not rows:
            return 0
        if cfg.delivery.workers == 1 or len(rows) == 1:
            for row in rows:
                self._send(row, now, cfg)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    cfg.delivery.workers, thread_name_prefix="router-outbox"
                )
            list(self._pool.map(lambda row: self._send(row, now, cfg), rows))
        return len(rows)

    def pump(self, now: float) -> int:
        """Hand due notifications to their receivers' idle workers; never waits for a send.

        At most one notification per group and integration is in flight, so a group's
        notifications arrive in order.
        """
        cfg = self.config()
        per_receiver = cfg.delivery.workers
        with self._lock:
            free = {name: per_receiver - n for name, n in self._busy.items()}
            skip = set(self._busy_groups)
        rows = self.store.claim_due_per_receiver(now, cfg.delivery.lease, free, per_receiver, skip)
        for row in rows:
            key = (row.group_key, row.receiver, row.integration)
            with self._lock:
                self._busy[row.receiver] = self._busy.get(row.receiver, 0) + 1
                self._busy_groups.add(key)
                pool = self._pools.get(row.receiver)
                if pool is None:
                    pool = self._pools[row.receiver] = ThreadPoolExecutor(
                        per_receiver, thread_name_prefix="router-send"
                    )
            pool.submit(self._send_and_release, row, cfg, key)
        return len(rows)

    def _send_and_release(
        self, row: OutboxRow, cfg: RouterConfig, key: tuple[str, str, int]
    ) -> None:
        try:
            self._send(row, time.time(), cfg)
        except Exception:  # noqa: BLE001 - the worker must free its slot whatever happens
            log.exception("sending notification %d failed", row.id)
        finally:
            with self._lock:
                self._busy[row.receiver] -= 1
                if self._busy[row.receiver] <= 0:
                    del self._busy[row.receiver]
                self._busy_groups.discard(key)
            self.on_done()

    def _send(self, row: OutboxRow, now: float, cfg: RouterConfig) -> None:
        notifiers = self.notifiers(row.receiver)
        payload = json.loads(row.payload)
        server = payload.get("commonLabels", {}).get("server", "")
        traces = _traces(payload)
        ids = log_ids(t for t, _ in traces)

        def attempt(
            outcome: str, when: float, error: str = "", retry_at: float | None = None
        ) -> None:
            # One stage per alert of the notification: each trace shows its own delivery.
            self.store.add_trace(
                trace_row(
                    t,
                    when,
                    "delivery",
                    outcome,
                    fp,
                    receiver=row.receiver,
                    integration=row.kind,
                    outbox_id=row.id,
                    attempt=row.attempts + 1,
                    error=error,
                    retry_at=retry_at,
                )
                for t, fp in traces
            )

        if row.integration >= len(notifiers):
            error = f"receiver {row.receiver!r} has no integration {row.integration} now"
            self._give_up(row, now, server, "receiver_removed", error, ids)
            attempt("failed", now, error)
            return
        notifier = notifiers[row.integration]
        if not self.may_send():
            # This process no longer leads: the row goes back for the new leader, unsent.
            self.store.release_claim(row.id)
            return
        outcome = pipeline.send(notifier, payload, row, now, cfg.delivery, self.rand)
        if outcome.status == "sent":
            self.metrics.sent.labels(row.receiver, row.kind).inc()
            pipeline.record_sent(self.store, row, payload, now, server)
            attempt("sent", now)
            log.info("notification %d to %s/%s sent trace=%s", row.id, row.receiver, row.kind, ids)
            return
        self.metrics.failed.labels(row.receiver, row.kind, outcome.reason).inc()
        ended = outcome.ended_at
        if outcome.status == "give_up":
            self._give_up(row, ended, server, outcome.why, outcome.error, ids)
            attempt("failed", ended, outcome.error)
            return
        assert outcome.retry_at is not None
        if outcome.crash is not None:
            log.error(
                "notifier %s crashed on notification %d trace=%s",
                row.kind,
                row.id,
                ids,
                exc_info=outcome.crash,
            )
        else:
            log.warning(
                "notification %d to %s/%s failed (%s), retry in %.1fs: %s trace=%s",
                row.id,
                row.receiver,
                row.kind,
                outcome.reason,
                outcome.retry_at - ended,
                outcome.message,
                ids,
            )
        self.store.mark_retry(row.id, outcome.retry_at, outcome.error)
        attempt("retrying", ended, outcome.error, outcome.retry_at)

    def _give_up(
        self, row: OutboxRow, now: float, server: str, reason: str, error: str, ids: str = ""
    ) -> None:
        self.metrics.given_up.labels(row.receiver, row.kind, reason).inc()
        log.error(
            "notification %d to %s/%s given up: %s trace=%s",
            row.id,
            row.receiver,
            row.kind,
            error,
            ids,
        )
        self.store.mark_failed(
            row.id,
            error,
            HistoryEvent(
                now,
                "notification",
                str(row.id),
                server,
                "failed",
                reason=error,
                details=json.dumps({"receiver": row.receiver, "integration": row.kind}),
            ),
        )
