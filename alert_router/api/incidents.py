"""Incidents (list, show, acknowledge, close) and the history of every transition."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from alert_router.api.common import json_body, register_error_handlers, state
from alert_router.incidents import Incidents, TransitionError
from alert_router.timeutil import parse_time

bp = Blueprint("incidents", __name__)
register_error_handlers(bp)
STATES = ("open", "acknowledged", "resolved", "closed")
MAX_ID = 2**63 - 1  # SQLite's INTEGER range


def _known_id(incident_id: int) -> int:
    if incident_id > MAX_ID:
        abort(404, description=f"incident {incident_id} not found")
    return incident_id


@bp.get("/api/v1/incidents")
def list_incidents() -> Response:
    """Incidents, newest first; filters: state, server."""
    wanted = request.args.get("state")
    if wanted is not None and wanted not in STATES:
        abort(400, description=f"state: must be one of {', '.join(STATES)}")
    return jsonify(state().store.list_incidents(state=wanted, server=request.args.get("server")))


@bp.get("/api/v1/incidents/<int:incident_id>")
def get_incident(incident_id: int) -> Response:
    """One incident with its alerts and its history."""
    store = state().store
    incident = store.get_incident(_known_id(incident_id))
    if incident is None:
        abort(404, description=f"incident {incident_id} not found")
    incident["history"] = [
        asdict(e)
        for e in store.query_history(kind="incident", subject=str(incident_id), by_id=True)
    ]
    return jsonify(incident)


def _who_why() -> tuple[str, str]:
    body = json_body()
    if not isinstance(body, dict):
        abort(400, description="body: must be a JSON object with 'by' and 'reason'")
    unknown = sorted(set(body) - {"by", "reason"})
    if unknown:
        abort(400, description=f"{unknown[0]}: unknown field (want by, reason)")
    by, reason = body.get("by"), body.get("reason", "")
    if not isinstance(by, str) or not by.strip():
        abort(400, description="by: required, who takes this action")
    if not isinstance(reason, str):
        abort(400, description="reason: must be a string")
    return by.strip(), reason


def _transition(incident_id: int, target: str) -> Response:
    by, reason = _who_why()
    try:
        result = Incidents(state().store).transition(
            _known_id(incident_id), target, actor=by, reason=reason, now=time.time()
        )
    except LookupError as exc:
        abort(404, description=str(exc))
    except TransitionError as exc:
        abort(409, description=str(exc))
    return jsonify(result)


@bp.post("/api/v1/incidents/<int:incident_id>/acknowledge")
def acknowledge(incident_id: int) -> Response:
    """Acknowledge an open incident: {"by": "...", "reason": "..."}."""
    return _transition(incident_id, "acknowledged")


@bp.post("/api/v1/incidents/<int:incident_id>/close")
def close(incident_id: int) -> Response:
    """Close an incident: {"by": "...", "reason": "..."}."""
    return _transition(incident_id, "closed")


def _time_arg(name: str) -> float | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_time(value)
    except ValueError as exc:
        abort(400, description=f"{name}: {exc} (or unix seconds)")


@bp.get("/api/v1/history")
def history() -> Response:
    """The audit trail; filters: server, kind, subject, since, until (RFC 3339 or unix), limit."""
    kind = request.args.get("kind")
    if kind is not None and kind not in ("alert", "incident", "notification", "silence"):
        abort(400, description="kind: must be alert, incident, notification or silence")
    try:
        limit = int(request.args.get("limit", "1000"))
    except ValueError:
        abort(400, description="limit: must be an integer")
    if not 1 <= limit <= 10000:
        abort(400, description="limit: must be from 1 to 10000")
    events: list[dict[str, Any]] = [
        asdict(e)
        for e in state().store.query_history(
            server=request.args.get("server"),
            kind=kind,
            subject=request.args.get("subject"),
            since=_time_arg("since"),
            until=_time_arg("until"),
            limit=limit,
        )
    ]
    return jsonify(events)
