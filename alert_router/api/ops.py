"""Operational endpoints: /-/healthy, /-/ready, /-/reload, /metrics."""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Response, abort
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_router.api.common import register_error_handlers, state

bp = Blueprint("ops", __name__)
register_error_handlers(bp)
log = logging.getLogger(__name__)


@bp.get("/-/healthy")
def healthy() -> Response:
    return Response("OK\n", mimetype="text/plain")


MIN_HEADROOM = 8 * 1024 * 1024


def write_headroom(max_request_bytes: int) -> int:
    """Free bytes the SQLite store's volume needs to count as ready: room for the largest
    request twice over (its inbox row, then its copy in the WAL), at least MIN_HEADROOM."""
    return max(MIN_HEADROOM, 2 * max_request_bytes)


def _free_bytes(path: str) -> int | None:
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


@bp.get("/-/ready")
def ready() -> Response:
    """Ready when the store answers and, for SQLite, its volume has room for writes.

    A full volume still answers reads but refuses every write, so the router reports not
    ready (load balancers stop sending alerts to it) and ready again, by itself, once space
    is back.
    """
    st = state()
    try:
        st.store.conn().execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        log.error("store not ready: %s", exc)
        abort(503, description="store unavailable")
    cfg = st.config
    if not cfg.storage_url and cfg.storage_path != ":memory:":
        free = _free_bytes(cfg.storage_path)
        need = write_headroom(cfg.max_request_bytes)
        if free is not None and free < need:
            log.error("store not ready: %d bytes free on its volume, %d needed", free, need)
            abort(503, description=f"storage nearly full: {free} bytes free on the store's "
                  f"volume, writes need {need}")
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
