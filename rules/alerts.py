"""The alert lifecycle and delivery in Alertmanager's v2 format (`POST /api/v2/alerts`).

`AlertBook` remembers every alert the engine has raised: each cycle the
engine hands it the complete set of firing alerts; what disappeared gets
`endsAt` = now and is re-sent (resolved) for `resolved_resend_seconds`, as
Prometheus does, so a receiver that missed one send still learns about it.
One-shot events (ServerOnline) carry their own `endsAt`.

Firing alerts are sent with `endsAt` a few intervals ahead (as Prometheus
does), so that a receiver resolves them by itself if the engine dies; the
Watchdog alert makes that death visible.

`send_alerts` posts the book to every receiver in parallel, in batches, with
timeouts; a failing receiver is counted and skipped, never blocking the cycle.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from rules.conditions import label_key
from rules.config import Receiver
from stacksense_common.trace_id import derive as trace_id

TRACE_ANNOTATION = "trace_id"

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class AlertRecord:
    """One alert as the engine last described it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None = None  # set once resolved (or fixed, for events)
    event: bool = False  # a one-shot notification with its own endsAt
    generator_url: str = ""


@dataclass
class DeliveryResult:
    """What one send round achieved, per receiver URL."""

    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds."""
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


class AlertBook:
    """Firing and recently resolved alerts, keyed by label set."""

    def __init__(self, resolved_resend_seconds: float = 900.0) -> None:
        self.resolved_resend_seconds = resolved_resend_seconds
        self.records: dict[str, AlertRecord] = {}

    def sync(self, firing: Iterable[AlertRecord], now: float) -> list[AlertRecord]:
        """Replace the firing set; return alerts that resolved now."""
        seen: set[str] = set()
        for alert in firing:
            key = label_key(alert.labels)
            seen.add(key)
            old = self.records.get(key)
            if old is not None and old.ends_at is None and not old.event:
                # Keep the original start so receivers see one continuing alert.
                alert.starts_at = old.starts_at
            self.records[key] = alert
        resolved = []
        keep = self.resolved_resend_seconds
        for key, record in list(self.records.items()):
            if not record.event and key not in seen and record.ends_at is None:
                record.ends_at = now
                resolved.append(record)
            elif record.ends_at is not None and now - record.ends_at > keep:
                del self.records[key]
        return resolved

    def add_event(self, record: AlertRecord) -> None:
        """Add a one-shot alert that carries its own endsAt."""
        record.event = True
        self.records[label_key(record.labels)] = record

    def firing(self, now: float) -> list[AlertRecord]:
        """Alerts still firing at `now`."""
        return [r for r in self.records.values() if r.ends_at is None or r.ends_at > now]

    def payload(self, now: float, firing_horizon: float) -> list[dict[str, Any]]:
        """The whole book as an Alertmanager v2 `postableAlerts` list."""
        out = []
        for record in self.records.values():
            ends = record.ends_at if record.ends_at is not None else now + firing_horizon
            item: dict[str, Any] = {
                "labels": record.labels,
                # The occurrence's trace id, followed by the router from here to delivery.
                "annotations": {
                    **record.annotations,
                    TRACE_ANNOTATION: trace_id(record.labels, record.starts_at),
                },
                "startsAt": rfc3339(record.starts_at),
                "endsAt": rfc3339(ends),
            }
            if record.generator_url:
                item["generatorURL"] = record.generator_url
            out.append(item)
        return out

    def get_state(self) -> list[dict[str, Any]]:
        """JSON-friendly state."""
        return [
            {
                "labels": r.labels,
                "annotations": r.annotations,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
                "event": r.event,
                "generator_url": r.generator_url,
            }
            for r in self.records.values()
        ]

    @classmethod
    def from_state(cls, raw: Any, resolved_resend_seconds: float = 900.0) -> AlertBook:
        """Rebuild from `get_state()`; malformed entries are skipped."""
        book = cls(resolved_resend_seconds)
        for item in raw if isinstance(raw, list) else []:
            try:
                record = AlertRecord(
                    dict(item["labels"]),
                    dict(item["annotations"]),
                    float(item["starts_at"]),
                    None if item["ends_at"] is None else float(item["ends_at"]),
                    bool(item.get("event", False)),
                    str(item.get("generator_url", "")),
                )
            except (KeyError, TypeError, ValueError):
                continue
            book.records[label_key(record.labels)] = record
        return book


def send_alerts(
    session: requests.Session, receivers: Sequence[Receiver], alerts: list[dict[str, Any]]
) -> DeliveryResult:
    """POST `alerts` to every receiver in parallel; count what got through and what did not."""
    result = DeliveryResult()
    if not receivers or not alerts:
        return result
    with ThreadPoolExecutor(max_workers=min(8, len(receivers))) as pool:
        outcomes = list(pool.map(lambda r: _send_one(session, r, alerts), receivers))
    for receiver, (sent, failed, error) in zip(receivers, outcomes, strict=True):
        result.sent[receiver.url] = sent
        result.failed[receiver.url] = failed
        if error:
            result.errors[receiver.url] = error
    return result


def _send_one(
    session: requests.Session, receiver: Receiver, alerts: list[dict[str, Any]]
) -> tuple[int, int, str]:
    url = receiver.url + "/api/v2/alerts"
    headers = {"Content-Type": "application/json"}
    try:
        token = receiver.bearer_token()
    except OSError as exc:
        return 0, len(alerts), f"cannot read bearer_token_file: {exc.strerror or exc}"
    if token is not None and token.reveal():
        headers["Authorization"] = f"Bearer {token.reveal()}"
    sent = 0
    for start in range(0, len(alerts), BATCH_SIZE):
        batch = alerts[start : start + BATCH_SIZE]
        try:
            resp = session.post(
                url, data=json.dumps(batch), headers=headers, timeout=receiver.timeout_seconds
            )
        except requests.RequestException as exc:
            # Give up on this receiver for this cycle: the next cycle re-sends everything.
            return sent, len(alerts) - sent, f"{type(exc).__name__} posting to {url}"
        if not 200 <= resp.status_code < 300:
            return (
                sent,
                len(alerts) - sent,
                (f"HTTP {resp.status_code} from {url}: {resp.text[:200]}"),
            )
        sent += len(batch)
    return sent, 0, ""
