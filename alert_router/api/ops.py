"""Operational endpoints: /-/healthy, /-/ready, /-/reload (stacksense_common.ops), /metrics.

They mean what they mean in every StackSense service. The router is ready when its store
answers and has room for writes. A reload needs one of `auth.tokens` as a bearer token,
or, with no token configured, a loopback client that is not a web page (the one rule;
alert_router.auth leaves this path to it). Errors come in the router's JSON error body,
like its other errors.
"""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_router.api.common import error_body, register_error_handlers, state
from stacksense_common.ops import HEALTHY, READY, RELOAD, Ops, OpsAnswer

bp = Blueprint("ops", __name__)
register_error_handlers(bp)
log = logging.getLogger(__name__)


def _ops() -> Ops:
    st = state()
    return Ops(
        "alert router",
        ready=_not_ready,
        reload=st.reload,
        # Any failure to load or apply the new config is reported and the old stays.
        config_errors=(Exception,),
        write_tokens=lambda: st.config.auth.tokens or None,
    )


def _answer(answer: OpsAnswer) -> Response:
    """Text as in every service; an error in the router's JSON error body, as elsewhere."""
    if answer.ok:
        return Response(
            answer.text, status=answer.status, mimetype="text/plain", headers=list(answer.headers)
        )
    return Response(
        error_body(request.path, answer.status, answer.message),
        status=answer.status,
        mimetype="application/json",
        headers=list(answer.headers),
    )


@bp.get(HEALTHY)
def healthy() -> Response:
    return _answer(_ops().healthy())


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


def _not_ready() -> str | None:
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
        return "store unavailable"
    cfg = st.config
    if not cfg.storage_url and cfg.storage_path != ":memory:":
        free = _free_bytes(cfg.storage_path)
        need = write_headroom(cfg.max_request_bytes)
        if free is not None and free < need:
            log.error("store not ready: %d bytes free on its volume, %d needed", free, need)
            return (
                f"storage nearly full: {free} bytes free on the store's volume, writes need {need}"
            )
    return None


@bp.get(READY)
def ready() -> Response:
    return _answer(_ops().ready())


# Every method reaches the view, so that a GET gets the same 405 as in the other services.
@bp.route(RELOAD, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def reload() -> Response:
    """Re-read the config file; the old config stays in force when the new one is invalid."""
    return _answer(
        _ops().reload(
            request.method,
            request.headers.get("Authorization"),
            request.remote_addr or "",
            request.headers.get("Origin"),
        )
    )


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(state().metrics.registry), mimetype=CONTENT_TYPE_LATEST)
