"""Operational endpoints: /-/healthy, /-/ready, /-/reload, /metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_router.api.common import register_error_handlers, state

bp = Blueprint("ops", __name__)
register_error_handlers(bp)
log = logging.getLogger(__name__)


@bp.get("/-/healthy")
def healthy() -> Response:
    return Response("OK\n", mimetype="text/plain")


@bp.get("/-/ready")
def ready() -> Response:
    """Ready when the store answers."""
    try:
        state().store.conn().execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        log.error("store not ready: %s", exc)
        abort(503, description="store unavailable")
    return Response("OK\n", mimetype="text/plain")


@bp.post("/-/reload")
def reload() -> Response:
    """Re-read the config file; the old config stays in force when the new one is invalid."""
    try:
        state().reload()
    except Exception as exc:  # noqa: BLE001 - reported to the caller, old config kept
        abort(500, description=f"reload failed, previous config kept: {exc}")
    return Response("OK\n", mimetype="text/plain")


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(state().metrics.registry), mimetype=CONTENT_TYPE_LATEST)
