"""The notification pipeline, in Alertmanager's order, top to bottom.

At a group's flush (the dispatcher, inside the flush's transaction):

1. mute    - silenced and inhibited alerts leave the notification;
2. dedupe  - notify only what the integration has not been told yet (its notification
             log, or the notification still queued for it);
3. queue   - the notification goes to the outbox, replacing one of the group not yet sent.

For each queued notification (the outbox, the one place that retries):

4. send with retry - deliver; a retryable failure is tried again after a backoff until
                     delivery.give_up_after, a permanent one is given up;
5. record  - only after a successful send, the notification log entry it stands for.

The callers keep what is theirs: transactions, traces, metrics and log lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alert_router.config import DeliveryConfig
from alert_router.dedupe import Decision, entry_of_payload, should_notify
from alert_router.inhibit import Inhibitor
from alert_router.notify.base import AlertData, NotificationData, Notifier, NotifyError
from alert_router.silence import Silencer
from alert_router.store import AlertRow, HistoryEvent, OutboxRow, Store
from alert_router.timeutil import to_datetime
from stacksense_common import backoff


# ---- 1. mute
def mute(
    alerts: Iterable[AlertRow], silencer: Silencer, inhibitor: Inhibitor | None
) -> tuple[list[AlertRow], list[tuple[AlertRow, str]]]:
    """(kept, [(muted alert, "silenced" | "inhibited")]) of a group's alerts."""
    kept: list[AlertRow] = []
    muted: list[tuple[AlertRow, str]] = []
    for alert in alerts:
        if silencer.silenced_by(alert.labels):
            muted.append((alert, "silenced"))
        elif inhibitor and inhibitor.inhibited_by(alert.fingerprint, alert.labels):
            muted.append((alert, "inhibited"))
        else:
            kept.append(alert)
    return kept, muted


# ---- 2. dedupe
def dedupe(
    store: Store,
    group_key: str,
    receiver: str,
    integration: int,
    notifier: Notifier,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    repeat_interval: float,
    now: float,
) -> Decision:
    """Alertmanager's DedupStage. The log is written when a send succeeds; a notification
    still queued or retrying counts as sent meanwhile, so a flush never queues it twice."""
    last = store.latest_notified(group_key, receiver, integration)
    return should_notify(
        last,
        firing,
        resolved,
        send_resolved=notifier.send_resolved,
        repeat_interval=repeat_interval,
        now=now,
    )


# ---- 3. queue
def queue(
    store: Store,
    group_key: str,
    receiver: str,
    integration: int,
    kind: str,
    payload: dict[str, Any],
    now: float,
) -> None:
    """One waiting notification per group and integration: the newest state replaces one
    not yet sent (a retrying one would otherwise arrive after it)."""
    store.supersede_pending(group_key, receiver, integration)
    store.enqueue(group_key, receiver, integration, kind, json.dumps(payload), now)


# ---- 4. send with retry
def notification_data(payload: dict[str, Any]) -> NotificationData:
    """Rebuild the template data from its outbox form."""
    alerts = []
    for a in payload["alerts"]:
        starts = to_datetime(a["startsAt"])
        assert starts is not None
        alerts.append(
            AlertData(
                a["status"],
                a["labels"],
                a["annotations"],
                starts,
                to_datetime(a["endsAt"]),
                a["generatorURL"],
                a["fingerprint"],
            )
        )
    return NotificationData(
        receiver=payload["receiver"],
        status=payload["status"],
        alerts=alerts,
        group_labels=payload["groupLabels"],
        common_labels=payload["commonLabels"],
        common_annotations=payload["commonAnnotations"],
        external_url=payload["externalURL"],
        group_key=payload["groupKey"],
        diagnostics=payload.get("diagnostics"),
    )


# Retries of one receiver spread over the last fifth below the ceiling, so the ceiling
# (max_backoff) is a true maximum and a burst of failed rows does not retry in step.
RETRY_JITTER = 0.2


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to.

    status "sent", "retry" (again at `retry_at`) or "give_up"; `reason` is the failure's
    metric label ("internal" for a notifier that crashed), `error` what the row records
    ("reason: message"), `why` the give-up reason.
    """

    status: str
    ended_at: float
    reason: str = ""
    error: str = ""
    retry_at: float | None = None
    why: str = ""
    message: str = ""  # the notifier's own message
    crash: BaseException | None = None


def send(
    notifier: Notifier,
    payload: dict[str, Any],
    row: OutboxRow,
    now: float,
    delivery: DeliveryConfig,
    rand: Callable[[], float],
) -> Outcome:
    """One attempt, and when to try again after a failure (never raises)."""
    try:
        notifier.notify(notification_data(payload))
    except NotifyError as exc:
        # Backoff counts from the end of the attempt, however long it took (a caller's
        # clock ahead of the real one, as in tests, is kept).
        ended = max(now, time.time())
        error = f"{exc.reason}: {exc}"
        if exc.retryable and ended - row.created_at < delivery.give_up_after:
            delay = backoff.delay(
                row.attempts + 1,  # failures so far, this one included
                initial=delivery.initial_backoff,
                maximum=delivery.max_backoff,
                jitter=RETRY_JITTER,
                rand=rand,
            )
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            return Outcome("retry", ended, exc.reason, error, ended + delay, message=str(exc))
        why = exc.reason if not exc.retryable else "give_up_after"
        return Outcome("give_up", ended, exc.reason, error, why=why, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a notifier bug must not lose the row
        ended = max(now, time.time())
        return Outcome(
            "retry",
            ended,
            "internal",
            f"internal: {type(exc).__name__}",
            ended + delivery.max_backoff,
            crash=exc,
        )
    return Outcome("sent", now)


# ---- 5. record the notification log after a successful send
def record_sent(
    store: Store, row: OutboxRow, payload: dict[str, Any], now: float, server: str
) -> None:
    """Mark the row sent and, in the same transaction, log what it told the receiver."""
    store.mark_sent(
        row.id,
        now,
        HistoryEvent(
            now,
            "notification",
            str(row.id),
            server,
            "sent",
            details=json.dumps(
                {
                    "receiver": row.receiver,
                    "integration": row.kind,
                    "group_key": row.group_key,
                    "status": payload["status"],
                    "alerts": [a["fingerprint"] for a in payload["alerts"]],
                }
            ),
        ),
        nflog=(row.group_key, row.receiver, row.integration, entry_of_payload(payload, now)),
    )
