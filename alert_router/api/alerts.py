"""Alertmanager's v2 alerts API: POST (postable alerts) and GET (as amtool queries it)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from alert_router.api.common import accept_alerts, filter_matchers, register_error_handlers, state
from alert_router.ingest import postable_alerts
from alert_router.inhibit import Inhibitor
from alert_router.silence import Silencer
from alert_router.timeutil import format_time

bp = Blueprint("alerts", __name__)
register_error_handlers(bp)


@bp.post("/api/v2/alerts")
def post_alerts() -> Response:
    """Accept Alertmanager postable alerts (Prometheus, the rule engine, any client)."""
    return accept_alerts("api", postable_alerts)


def _flag(name: str, default: bool) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        abort(400, description=f"{name}: must be true or false")
    return value.lower() == "true"


def gettable_alerts(now: float) -> list[dict[str, Any]]:
    """Every stored alert in the v2 gettableAlert form, with silenced/inhibited status."""
    st = state()
    cfg = st.config
    silencer = Silencer(st.store.list_silences(), now)
    inhibitor = Inhibitor(cfg.inhibit_rules, st.store.firing_labels(now))
    out = []
    for alert in st.store.all_alerts():
        silenced = silencer.silenced_by(alert.labels)
        inhibited = inhibitor.inhibited_by(alert.fingerprint, alert.labels) \
            if alert.firing(now) else []
        receivers = []
        for route in cfg.route.match(alert.labels):
            if route.receiver not in receivers:
                receivers.append(route.receiver)
        out.append({
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": format_time(alert.starts_at),
            "endsAt": format_time(alert.ends_at),
            "updatedAt": format_time(alert.updated_at),
            "generatorURL": alert.generator_url,
            "fingerprint": alert.fingerprint,
            "receivers": [{"name": r} for r in receivers],
            "status": {"state": "suppressed" if silenced or inhibited else "active",
                       "silencedBy": silenced, "inhibitedBy": inhibited},
            "_firing": alert.firing(now),
        })
    return out


@bp.get("/api/v2/alerts")
def get_alerts() -> Response:
    """List alerts with Alertmanager's filters (filter, active, silenced, inhibited, receiver)."""
    now = time.time()
    matchers = filter_matchers()
    want = {"active": _flag("active", True), "silenced": _flag("silenced", True),
            "inhibited": _flag("inhibited", True)}
    _flag("unprocessed", True)
    receiver = request.args.get("receiver")
    result = []
    for alert in gettable_alerts(now):
        if not alert.pop("_firing"):
            continue
        status = alert["status"]
        if status["silencedBy"] and not want["silenced"]:
            continue
        if status["inhibitedBy"] and not want["inhibited"]:
            continue
        if status["state"] == "active" and not want["active"]:
            continue
        if receiver and not any(r["name"] == receiver for r in alert["receivers"]):
            continue
        if all(m.matches(alert["labels"]) for m in matchers):
            result.append(alert)
    return jsonify(result)
