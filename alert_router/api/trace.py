"""What happened to one alert occurrence: GET /api/v1/trace/<id>, and a retry of its
failed deliveries (POST /api/v1/trace/<id>/retry, a write: authenticated like the others)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, jsonify

from alert_router.api.common import register_error_handlers, state
from alert_router.trace import VALID, row

bp = Blueprint("trace", __name__)
register_error_handlers(bp)


def _checked(trace_id: str) -> str:
    if not VALID.match(trace_id):
        abort(400, description="trace id: must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return trace_id


@bp.get("/api/v1/trace/<path:trace_id>")
def get_trace(trace_id: str) -> Response:
    """The stages of one trace in time order (404 when none was recorded)."""
    stages = state().store.trace(_checked(trace_id))
    if not stages:
        abort(404, description=f"trace {trace_id} not found")
    return jsonify({"trace_id": trace_id, "stages": stages})


@bp.post("/api/v1/trace/<trace_id>/retry")
def retry_trace(trace_id: str) -> Response:
    """Queue again the notifications of this trace whose delivery was given up."""
    store = state().store
    stages = store.trace(_checked(trace_id))
    if not stages:
        abort(404, description=f"trace {trace_id} not found")
    failed = {
        int(s["details"]["outbox_id"])
        for s in stages
        if s["stage"] == "delivery"
        and s["outcome"] == "failed"
        and isinstance(s["details"].get("outbox_id"), int)
    }
    now = time.time()
    requeued = store.requeue_failed(failed, now)
    store.add_trace(
        [
            row(
                trace_id,
                now,
                "retry",
                "requeued" if requeued else "nothing",
                stages[0]["fingerprint"],
                outbox_ids=requeued,
            )
        ]
    )
    if requeued:
        state().wake()  # the outbox sends them now, not at its next idle tick
    return jsonify({"trace_id": trace_id, "requeued": requeued})
