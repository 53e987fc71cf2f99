"""Alerts, incidents and silences as the console shows them, read through the store's methods."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from alert_router.config import RouterConfig
from alert_router.errors import InputError
from alert_router.inhibit import Inhibitor
from alert_router.silence import Silence, Silencer, parse_postable_silence
from alert_router.store import AlertRow, HistoryEvent, Store
from alert_router.timeutil import format_time

SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
MAX_SILENCE = 90 * 86400.0  # a maintenance window longer than this is a typo


@dataclass
class AlertView:
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    firing: bool
    silenced_by: list[str]
    inhibited_by: list[str]

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "none")

    @property
    def server(self) -> str:
        return self.labels.get("server", "")

    @property
    def state(self) -> str:
        if not self.firing:
            return "resolved"
        return "suppressed" if self.silenced_by or self.inhibited_by else "active"


def alert_views(
    store: Store,
    cfg: RouterConfig,
    now: float,
    *,
    server: str | None = None,
    show_resolved: bool = False,
    show_info: bool = False,
) -> list[AlertView]:
    """Stored alerts with their silence and inhibition status (critical first)."""
    silencer = Silencer(store.list_silences(), now)
    inhibitor = Inhibitor(cfg.inhibit_rules, store.firing_labels(now))
    out = []
    for row in store.all_alerts():
        if server is not None and row.labels.get("server", "") != server:
            continue
        firing = row.firing(now)
        if not firing and not show_resolved:
            continue
        if row.labels.get("severity") == "info" and not show_info:
            continue
        out.append(_view(row, firing, silencer, inhibitor))
    out.sort(
        key=lambda a: (
            not a.firing,
            SEVERITY_RANK.get(a.severity, 4),
            a.server,
            a.labels.get("alertname", ""),
            a.starts_at,
        )
    )
    return out


def _view(row: AlertRow, firing: bool, silencer: Silencer, inhibitor: Inhibitor) -> AlertView:
    return AlertView(
        row.fingerprint,
        row.labels,
        row.annotations,
        row.starts_at,
        firing,
        silencer.silenced_by(row.labels),
        inhibitor.inhibited_by(row.fingerprint, row.labels) if firing else [],
    )


def grouped(alerts: list[AlertView]) -> list[tuple[str, list[tuple[str, list[AlertView]]]]]:
    """[(server, [(severity, alerts)])], servers with the most severe alerts first."""
    by_server: dict[str, dict[str, list[AlertView]]] = {}
    for alert in alerts:
        by_server.setdefault(alert.server, {}).setdefault(alert.severity, []).append(alert)
    out = []
    for server, severities in by_server.items():
        ordered = sorted(severities.items(), key=lambda kv: SEVERITY_RANK.get(kv[0], 4))
        out.append((server, ordered))
    out.sort(key=lambda item: (SEVERITY_RANK.get(item[1][0][0], 4), item[0]))
    return out


def silence_from_form(
    form: dict[str, str], matchers: list[dict[str, Any]], user: str, now: float
) -> Silence:
    """A new silence from the console's form; InputError names the bad field."""
    try:
        hours = float(form.get("duration_hours", ""))
    except ValueError:
        raise InputError("duration: a number of hours") from None
    if not 0 < hours * 3600 <= MAX_SILENCE:
        raise InputError(f"duration: more than 0 and at most {MAX_SILENCE / 86400:g} days")
    body = {
        "matchers": matchers,
        "startsAt": format_time(now),
        "endsAt": format_time(now + hours * 3600),
        "createdBy": user,
        "comment": form.get("comment", ""),
    }
    return parse_postable_silence(body, now)


def matchers_from_form(names: list[str], values: list[str], ops: list[str]) -> list[dict[str, Any]]:
    """Form rows (name, op, value) as postable matchers; empty rows are skipped."""
    out = []
    for name, op, value in zip(names, ops, values, strict=False):
        if not name.strip():
            continue
        if op not in ("=", "!=", "=~", "!~"):
            raise InputError(f"matcher {name}: operator must be =, !=, =~ or !~")
        out.append(
            {
                "name": name.strip(),
                "value": value,
                "isRegex": "~" in op,
                "isEqual": not op.startswith("!"),
            }
        )
    if not out:
        raise InputError("matchers: at least one")
    return out


def op_of(matcher: Any) -> str:
    """A matcher's operator as people write it (=, !=, =~, !~)."""
    return {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}[
        (bool(matcher.is_equal), bool(matcher.is_regex))
    ]


def record_silence(store: Store, silence: Silence, transition: str, actor: str, now: float) -> None:
    """The history line the v2 API records too, with the console user as actor."""
    import json

    server = next(
        (m.value for m in silence.matchers if m.name == "server" and not m.is_regex and m.is_equal),
        "",
    )
    store.add_history(
        [
            HistoryEvent(
                now,
                "silence",
                silence.id,
                server,
                transition,
                actor=actor,
                reason=silence.comment,
                details=json.dumps([str(m) for m in silence.matchers]),
            )
        ]
    )


def save_silence(store: Store, silence: Silence, actor: str, now: float) -> None:
    with store.tx():
        store.put_silence(silence)
        record_silence(store, silence, "created", actor, now)


def expire_silence(store: Store, silence_id: str, actor: str, now: float) -> Silence | None:
    """Expire a silence now (as the v2 API does); None when there is no such silence."""
    with store.tx():
        old = store.get_silence(silence_id)
        if old is None:
            return None
        if old.state(now) == "expired":
            return old
        expired = Silence(
            old.id, old.matchers, min(old.starts_at, now), now, old.created_by, old.comment, now
        )
        store.put_silence(expired)
        record_silence(store, expired, "expired", actor, now)
    return expired


def silences(store: Store, now: float, *, show_expired: bool = False) -> list[Silence]:
    order = {"active": 0, "pending": 1, "expired": 2}
    out = [s for s in store.list_silences() if show_expired or s.state(now) != "expired"]
    out.sort(key=lambda s: (order[s.state(now)], -s.updated_at))
    return out


def history(store: Store, *, server: str | None = None, limit: int = 200) -> list[HistoryEvent]:
    """The newest `limit` events (of one server), newest first."""
    # The store reads oldest first: a recent window bounds the read, its tail is the answer.
    since = time.time() - 7 * 86400
    events = store.query_history(server=server, since=since, limit=20_000)
    return list(reversed(events[-limit:]))
