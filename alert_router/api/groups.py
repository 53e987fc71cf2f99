"""Alertmanager's `GET /api/v2/alerts/groups`: the aggregation groups with their alerts.

Grafana's Alertmanager data source and karma read alerts this way. The shape is
Alertmanager's alertGroup: `labels` (the group labels), `receiver: {name}` and `alerts`
(gettableAlert, firing only); a group none of whose alerts pass the filters is left out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, request

from alert_router.api.alerts import gettable_iter, page_args, paged
from alert_router.api.common import filter_matchers, register_error_handlers, state
from alert_router.matchers import Matcher

bp = Blueprint("groups", __name__)
register_error_handlers(bp)


def _flag(name: str, default: bool) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        abort(400, description=f"{name}: must be true or false")
    return value.lower() == "true"


def _receiver_matcher() -> Matcher | None:
    """Alertmanager's `receiver` parameter: a regex the group's receiver name must match."""
    raw = request.args.get("receiver")
    if not raw:
        return None
    try:
        return Matcher.create("receiver", raw, is_regex=True)
    except ValueError as exc:
        abort(400, description=f"receiver: {exc}")


@bp.get("/api/v2/alerts/groups")
def get_groups() -> Response:
    """Groups with Alertmanager's filters (filter, receiver, active, silenced, inhibited).

    Bounded like /api/v2/alerts: at most `limit` groups, `offset` pages on.
    """
    now = time.time()
    matchers = filter_matchers()
    want = {
        "active": _flag("active", True),
        "silenced": _flag("silenced", True),
        "inhibited": _flag("inhibited", True),
    }
    receiver = _receiver_matcher()
    limit, offset = page_args()
    store = state().store

    def alert_wanted(alert: dict[str, Any]) -> bool:
        status = alert["status"]
        if status["silencedBy"] and not want["silenced"]:
            return False
        if status["inhibitedBy"] and not want["inhibited"]:
            return False
        return status["state"] != "active" or want["active"]

    def groups() -> Iterator[dict[str, Any]]:
        alerts: dict[str, dict[str, Any]] = {}
        for alert in gettable_iter(now, firing_only=True, matchers=matchers):
            alert.pop("_firing", None)
            if alert_wanted(alert):
                alerts[alert["fingerprint"]] = alert
        members: dict[str, list[str]] = {}
        for group_key, fingerprint in store.group_memberships():
            members.setdefault(group_key, []).append(fingerprint)
        rows = [
            g
            for g in store.list_groups()
            if receiver is None or receiver.matches({"receiver": g.receiver})
        ]
        # Alertmanager's order: by group labels, then receiver.
        rows.sort(key=lambda g: (sorted(g.group_labels.items()), g.receiver))
        for group in rows:
            found = [alerts[fp] for fp in members.get(group.group_key, []) if fp in alerts]
            if found:
                found.sort(key=lambda a: (a["startsAt"], a["fingerprint"]))
                yield {
                    "labels": group.group_labels,
                    "receiver": {"name": group.receiver},
                    "alerts": found,
                }

    return paged(groups(), limit, offset)
