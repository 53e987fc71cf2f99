"""Helpers the views share: app state, JSON bodies, accepting normalised alerts."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.exceptions import HTTPException

from alert_router.api.body import decode_json
from alert_router.errors import InputError, LimitError
from alert_router.limits import FILTERS_PER_REQUEST
from alert_router.matchers import Matcher, parse_matcher
from alert_router.state import RouterState

log = logging.getLogger(__name__)
Parser = Callable[..., tuple[list[dict[str, Any]], list[str]]]


def state() -> RouterState:
    """The current app's RouterState."""
    result: RouterState = current_app.extensions["stacksense"]
    return result


def parse_json(data: bytes, content_type: str | None = None, list_name: str = "body") -> Any:
    """`data` parsed as strict UTF-8 JSON; InputError says why it is not (api.body)."""
    return decode_json(data, list_name=list_name, content_type=content_type)


def input_status(exc: InputError) -> int:
    """413 for a request over a documented limit, 400 for any other invalid input."""
    return LimitError.status if isinstance(exc, LimitError) else 400


def json_body() -> Any:
    """The request body parsed as JSON, or a 400 saying why it is not."""
    try:
        return parse_json(request.get_data(cache=False), request.headers.get("Content-Type"))
    except InputError as exc:
        abort(input_status(exc), description=str(exc))


def ingest(
    st: RouterState,
    source: str,
    parser: Parser,
    data: bytes,
    now: float,
    content_type: str | None = None,
) -> None:
    """Validate and durably store one request's alerts; InputError names what was rejected."""
    body = parse_json(data, content_type, "alerts")
    try:
        good, errors = parser(body, now=now)
    except InputError:
        st.metrics.invalid.labels(source).inc()
        raise
    if good:
        # One row per request: the whole batch is durable in one commit before the reply.
        if errors or source != "api":
            st.store.inbox.add(source, json.dumps(good), now)
        else:
            st.store.inbox.add(source, data.decode(), now, form="postable")
        st.metrics.received_from(source).inc(len(good))
        st.wake()
    if errors:
        st.metrics.invalid.labels(source).inc(len(errors))
        shown = "; ".join(errors[:20]) + ("; ..." if len(errors) > 20 else "")
        raise InputError(
            f"{len(errors)} invalid alert(s) rejected, {len(good)} valid alert(s) accepted: {shown}"
        )


def filter_matchers() -> list[Matcher]:
    """The request's `filter=` matchers (Alertmanager's list filters); 400 names a bad one."""
    filters = request.args.getlist("filter")
    if len(filters) > FILTERS_PER_REQUEST:
        abort(
            400,
            description=f"filter: more than {FILTERS_PER_REQUEST} filters "
            "(limit: filters per request)",
        )
    try:
        return [parse_matcher(f) for f in filters]
    except ValueError as exc:
        abort(400, description=f"filter: {exc}")


def storage_failure(exc: BaseException) -> bool:
    """Whether `exc` is the store failing (disk full, I/O error, database unreachable)."""
    if isinstance(exc, (sqlite3.Error, OSError)):
        return True
    # psycopg is imported only with a PostgreSQL store: recognise its errors by class.
    sqlstate = getattr(exc, "sqlstate", None)
    return type(exc).__module__.startswith("psycopg") and (
        sqlstate is None or sqlstate[:2] in ("08", "53", "57", "58")
    )


STORAGE_UNAVAILABLE = (
    "storage unavailable: the store cannot be written (disk full or I/O error); retry later"
)


def am_style(path: str) -> bool:
    """Whether `path` answers errors in Alertmanager's shape (a JSON string, as amtool reads)."""
    return path.startswith("/api/v2/")


def error_body(path: str, code: int, message: str) -> bytes:
    """The JSON error body for `path`: Alertmanager's bare string on /api/v2, ours elsewhere."""
    if am_style(path):
        return json.dumps(message).encode()
    return json.dumps({"status": "error", "code": code, "error": message}).encode()


def _error_response(code: int, message: str) -> Response:
    return Response(
        error_body(request.path, code, message), status=code, mimetype="application/json"
    )


def _http_error(exc: HTTPException) -> Response:
    response = _error_response(exc.code or 500, str(exc.description))
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if storage_failure(exc):
        log.error("%s %s: %s", request.method, request.path, STORAGE_UNAVAILABLE, exc_info=exc)
        return _error_response(503, STORAGE_UNAVAILABLE)
    log.error("%s %s failed", request.method, request.path, exc_info=exc)
    return _error_response(500, "internal error (see the router's log)")


def register_error_handlers(bp: Blueprint) -> None:
    """JSON errors on `bp`: Alertmanager's shape on /api/v2, a JSON 503 when the store fails."""
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _unexpected)
