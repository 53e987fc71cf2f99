"""The outbox worker: the one place that retries. Claim due rows, send, record the outcome."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alert_router.config import RouterConfig
from alert_router.dedupe import entry_of_payload
from alert_router.metrics import RouterMetrics
from alert_router.notify.base import AlertData, NotificationData, NotifyError
from alert_router.store import HistoryEvent, OutboxRow, Store
from alert_router.timeutil import to_datetime

log = logging.getLogger(__name__)


def notification_data(payload: dict[str, Any]) -> NotificationData:
    """Rebuild the template data from its outbox form."""
    alerts = []
    for a in payload["alerts"]:
        starts = to_datetime(a["startsAt"])
        assert starts is not None
        alerts.append(AlertData(a["status"], a["labels"], a["annotations"], starts,
                                to_datetime(a["endsAt"]), a["generatorURL"], a["fingerprint"]))
    return NotificationData(
        receiver=payload["receiver"], status=payload["status"], alerts=alerts,
        group_labels=payload["groupLabels"], common_labels=payload["commonLabels"],
        common_annotations=payload["commonAnnotations"], external_url=payload["externalURL"],
        group_key=payload["groupKey"])


def backoff(attempts: int, *, initial: float, maximum: float, rand: float) -> float:
    """Exponential backoff with ±20 % jitter: initial·2^attempts, capped at maximum."""
    base = min(maximum, initial * float(2 ** min(attempts, 30)))
    return base * (0.8 + 0.4 * rand)


class Outbox:
    """Sends claimed notifications through the receivers' notifiers."""

    def __init__(self, store: Store, config: Callable[[], RouterConfig],
                 notifiers: Callable[[str], Sequence[Any]], metrics: RouterMetrics,
                 *, rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self.config = config
        self.notifiers = notifiers
        self.metrics = metrics
        self.rand = rand
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

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
                self._pool = ThreadPoolExecutor(cfg.delivery.workers,
                                                thread_name_prefix="router-outbox")
            list(self._pool.map(lambda row: self._send(row, now, cfg), rows))
        return len(rows)

    def _send(self, row: OutboxRow, now: float, cfg: RouterConfig) -> None:
        notifiers = self.notifiers(row.receiver)
        payload = json.loads(row.payload)
        server = payload.get("commonLabels", {}).get("server", "")
        if row.integration >= len(notifiers):
            self._give_up(row, now, server, "receiver_removed",
                          f"receiver {row.receiver!r} has no integration {row.integration} now")
            return
        notifier = notifiers[row.integration]
        try:
            notifier.notify(notification_data(payload))
        except NotifyError as exc:
            self.metrics.failed.labels(row.receiver, row.kind, exc.reason).inc()
            age = now - row.created_at
            if exc.retryable and age < cfg.delivery.give_up_after:
                delay = backoff(row.attempts, initial=cfg.delivery.initial_backoff,
                                maximum=cfg.delivery.max_backoff, rand=self.rand())
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                log.warning("notification %d to %s/%s failed (%s), retry in %.1fs: %s",
                            row.id, row.receiver, row.kind, exc.reason, delay, exc)
                self.store.mark_retry(row.id, now + delay, f"{exc.reason}: {exc}")
            else:
                why = exc.reason if not exc.retryable else "give_up_after"
                self._give_up(row, now, server, why, f"{exc.reason}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not lose the row
            self.metrics.failed.labels(row.receiver, row.kind, "internal").inc()
            log.exception("notifier %s crashed on notification %d", row.kind, row.id)
            self.store.mark_retry(row.id, now + cfg.delivery.max_backoff,
                                  f"internal: {type(exc).__name__}")
            return
        self.metrics.sent.labels(row.receiver, row.kind).inc()
        entry = entry_of_payload(payload, now)
        self.store.mark_sent(row.id, now, HistoryEvent(
            now, "notification", str(row.id), server, "sent",
            details=json.dumps({"receiver": row.receiver, "integration": row.kind,
                                "group_key": row.group_key, "status": payload["status"],
                                "alerts": [a["fingerprint"] for a in payload["alerts"]]})),
            nflog=(row.group_key, row.receiver, row.integration, entry))

    def _give_up(self, row: OutboxRow, now: float, server: str, reason: str,
                 error: str) -> None:
        self.metrics.given_up.labels(row.receiver, row.kind, reason).inc()
        log.error("notification %d to %s/%s given up: %s", row.id, row.receiver, row.kind, error)
        self.store.mark_failed(row.id, error, HistoryEvent(
            now, "notification", str(row.id), server, "failed",
            reason=error, details=json.dumps({"receiver": row.receiver,
                                              "integration": row.kind})))
