"""Alertmanager's v2 alerts API: GET, as amtool queries it (POST is api.fastpath's)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, jsonify, request

from alert_router.api.common import filter_matchers, register_error_handlers, state
from alert_router.config import RouterConfig
from alert_router.inhibit import Inhibitor, source_alertnames
from alert_router.limits import READ_PAGE_MAX
from alert_router.matchers import Matcher
from alert_router.silence import Silencer
from alert_router.store import AlertRow
from alert_router.timeutil import format_time

bp = Blueprint("alerts", __name__)
register_error_handlers(bp)


def _flag(name: str, default: bool) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        abort(400, description=f"{name}: must be true or false")
    return value.lower() == "true"


class _Status:
    """Silences and inhibition of one read, loaded only once an alert needs them."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.cfg: RouterConfig = state().config
        self._silencer: Silencer | None = None
        self._inhibitor: Inhibitor | None = None

    def of(self, alert: AlertRow) -> dict[str, Any]:
        now, cfg = self.now, self.cfg
        store = state().store
        if self._silencer is None:
            self._silencer = Silencer(store.list_silences(), now)
            self._inhibitor = Inhibitor(
                cfg.inhibit_rules,
                store.firing_labels(now, source_alertnames(cfg.inhibit_rules))
                if cfg.inhibit_rules
                else [],
            )
        assert self._inhibitor is not None
        silenced = self._silencer.silenced_by(alert.labels)
        inhibited = (
            self._inhibitor.inhibited_by(alert.fingerprint, alert.labels)
            if alert.firing(now)
            else []
        )
        receivers = []
        for route in cfg.route.match(alert.labels):
            if route.receiver not in receivers:
                receivers.append(route.receiver)
        return {
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": format_time(alert.starts_at),
            "endsAt": format_time(alert.ends_at),
            "updatedAt": format_time(alert.updated_at),
            "generatorURL": alert.generator_url,
            "fingerprint": alert.fingerprint,
            "receivers": [{"name": r} for r in receivers],
            "status": {
                "state": "suppressed" if silenced or inhibited else "active",
                "silencedBy": silenced,
                "inhibitedBy": inhibited,
            },
            "_firing": alert.firing(now),
        }


def page_of_firing(now: float, limit: int, offset: int) -> list[dict[str, Any]]:
    """Firing alerts `offset`..`offset+limit` (oldest first) in the gettableAlert form."""
    status = _Status(now)
    return [_public(status.of(a)) for a in state().store.firing_page(now, limit, offset)]


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    alert.pop("_firing")
    return alert


def _candidates(matchers: list[Matcher] | None) -> list[AlertRow]:
    store = state().store
    for m in matchers or ():
        # alertname is an indexed column: an equality filter on it reads only those rows.
        if m.name == "alertname" and m.is_equal and not m.is_regex and m.value:
            return store.alerts_named(m.value)
    return store.all_alerts()


def gettable_iter(
    now: float, *, firing_only: bool = False, matchers: list[Matcher] | None = None
) -> Iterator[dict[str, Any]]:
    """Stored alerts in the v2 gettableAlert form, oldest first, computed one at a time.

    Label matchers are applied before the (costlier) silence, inhibition and route status,
    so a caller that stops after a page pays for that page only.
    """
    status = _Status(now)
    rows = sorted(_candidates(matchers), key=lambda a: (a.starts_at, a.fingerprint))
    for alert in rows:
        if firing_only and not alert.firing(now):
            continue
        if matchers and not all(m.matches(alert.labels) for m in matchers):
            continue
        yield status.of(alert)


def gettable_alerts(now: float) -> list[dict[str, Any]]:
    """Every stored alert in the v2 gettableAlert form, with silenced/inhibited status."""
    return list(gettable_iter(now))


MAX_OFFSET = 10**9


def page_args() -> tuple[int, int]:
    """The request's `limit` (default and most: READ_PAGE_MAX) and `offset` (default 0)."""
    values = []
    for name, default in (("limit", READ_PAGE_MAX), ("offset", 0)):
        raw = request.args.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            abort(400, description=f"{name}: must be an integer")
        values.append(value)
    limit, offset = values
    if not 1 <= limit <= READ_PAGE_MAX:
        abort(400, description=f"limit: must be from 1 to {READ_PAGE_MAX} (limit: read page size)")
    if not 0 <= offset <= MAX_OFFSET:
        abort(400, description=f"offset: must be from 0 to {MAX_OFFSET}")
    return limit, offset


def paged(
    items: Iterator[dict[str, Any]], limit: int, offset: int, *, skipped: bool = False
) -> Response:
    """A JSON list of at most `limit` items after `offset`; a Link header names the next page.

    skipped: `items` already starts at `offset` (the store paged them).
    """
    start = 0 if skipped else offset
    page = list(islice(items, start, start + limit + 1))
    more = len(page) > limit
    response = jsonify(page[:limit])
    if more:
        args = request.args.to_dict(flat=False)
        args["offset"] = [str(offset + limit)]
        args["limit"] = [str(limit)]
        response.headers["Link"] = f'<{request.path}?{urlencode(args, doseq=True)}>; rel="next"'
    return response


@bp.get("/api/v2/alerts")
def get_alerts() -> Response:
    """List alerts with Alertmanager's filters (filter, active, silenced, inhibited, receiver).

    Bounded: at most `limit` alerts (READ_PAGE_MAX by default), `offset` pages on.
    """
    now = time.time()
    matchers = filter_matchers()
    want = {
        "active": _flag("active", True),
        "silenced": _flag("silenced", True),
        "inhibited": _flag("inhibited", True),
    }
    _flag("unprocessed", True)
    receiver = request.args.get("receiver")
    limit, offset = page_args()
    if not matchers and not receiver and all(want.values()):
        # Nothing to filter: the store reads one page, whatever the number of alerts.
        return paged(iter(page_of_firing(now, limit + 1, offset)), limit, offset, skipped=True)

    def wanted() -> Iterator[dict[str, Any]]:
        for alert in gettable_iter(now, firing_only=True, matchers=matchers):
            alert.pop("_firing")
            status = alert["status"]
            if status["silencedBy"] and not want["silenced"]:
                continue
            if status["inhibitedBy"] and not want["inhibited"]:
                continue
            if status["state"] == "active" and not want["active"]:
                continue
            if receiver and not any(r["name"] == receiver for r in alert["receivers"]):
                continue
            yield alert

    return paged(wanted(), limit, offset)
