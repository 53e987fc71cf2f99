"""Alertmanager's v2 silences API, compatible with amtool silence add/query/expire."""

from __future__ import annotations

import json
import time
import uuid

from flask import Blueprint, Response, abort, jsonify

from alert_router.api.alerts import page_args, paged
from alert_router.api.common import filter_matchers, json_body, register_error_handlers, state
from alert_router.errors import InputError
from alert_router.silence import Silence, parse_postable_silence
from alert_router.store import HistoryEvent

bp = Blueprint("silences", __name__)
register_error_handlers(bp)
_UUID_CHARS = set("0123456789abcdef-")


def _record(silence: Silence, transition: str, now: float) -> None:
    server = next(
        (m.value for m in silence.matchers if m.name == "server" and not m.is_regex and m.is_equal),
        "",
    )
    state().store.add_history(
        [
            HistoryEvent(
                now,
                "silence",
                silence.id,
                server,
                transition,
                actor=silence.created_by,
                reason=silence.comment,
                details=json.dumps([str(m) for m in silence.matchers]),
            )
        ]
    )


@bp.get("/api/v2/silences")
def list_silences() -> Response:
    """Silences, optionally filtered by matchers (`filter=...`); paged like alerts."""
    now = time.time()
    matchers = filter_matchers()
    result = []
    for silence in state().store.list_silences():
        labels = {m.name: m.value for m in silence.matchers}
        if all(m.matches(labels) for m in matchers):
            result.append(silence.to_api(now))
    order = {"active": 0, "pending": 1, "expired": 2}
    result.sort(key=lambda s: order[s["status"]["state"]])
    limit, offset = page_args()
    return paged(iter(result), limit, offset)


@bp.post("/api/v2/silences")
def post_silence() -> tuple[Response, int]:
    """Create a silence, or update one when `id` is given (Alertmanager expires the old)."""
    now = time.time()
    body = json_body()
    try:
        silence = parse_postable_silence(body, now)
    except InputError as exc:
        abort(400, description=str(exc))
    store = state().store
    transition = "created"
    if isinstance(body, dict) and body.get("id"):
        old = store.get_silence(body["id"])
        if old is None:
            # Alertmanager's answer; amtool silence import then posts it again without an id.
            abort(404, description=f"silence {body['id']} not found")
        if old.state(now) == "expired":
            # Alertmanager leaves an expired silence as it is and creates a new one.
            silence = Silence(
                str(uuid.uuid4()),
                silence.matchers,
                max(silence.starts_at, now),
                silence.ends_at,
                silence.created_by,
                silence.comment,
                now,
            )
        # Times travel with millisecond precision: a start within 1 ms is the same start.
        elif old.matchers == silence.matchers and (
            old.state(now) == "pending" or abs(old.starts_at - silence.starts_at) < 1e-3
        ):
            transition = "updated"  # Alertmanager updates such a change in place
        else:
            # Alertmanager's rule: other changes expire the old silence and make a new one.
            expired = Silence(
                old.id, old.matchers, min(old.starts_at, now), now, old.created_by, old.comment, now
            )
            store.put_silence(expired)
            _record(expired, "expired", now)
            silence = Silence(
                str(uuid.uuid4()),
                silence.matchers,
                max(silence.starts_at, now),
                silence.ends_at,
                silence.created_by,
                silence.comment,
                now,
            )
    store.put_silence(silence)
    _record(silence, transition, now)
    state().wake()
    return jsonify({"silenceID": silence.id}), 200


def _get(silence_id: str) -> Silence:
    silence = state().store.get_silence(silence_id)
    if silence is None:
        abort(404, description=f"silence {silence_id} not found")
    return silence


@bp.get("/api/v2/silence/<silence_id>")
def get_silence(silence_id: str) -> Response:
    """One silence by id."""
    return jsonify(_get(silence_id).to_api(time.time()))


@bp.delete("/api/v2/silence/<silence_id>")
def expire_silence(silence_id: str) -> Response:
    """Expire a silence now (amtool silence expire)."""
    now = time.time()
    silence = _get(silence_id)
    if silence.state(now) == "expired":
        return Response(status=200)  # as Alertmanager 0.25: already done, nothing changes
    expired = Silence(
        silence.id,
        silence.matchers,
        min(silence.starts_at, now),
        now,
        silence.created_by,
        silence.comment,
        now,
    )
    state().store.put_silence(expired)
    _record(expired, "expired", now)
    return Response(status=200)
