"""A WSGI fast path for POST /api/v2/alerts, the one hot endpoint.

Prometheus and the rule engine post here every evaluation; Flask's request context, routing
and hooks cost more than the work itself for small batches. Same auth, size limit,
validation, storage, metrics and JSON errors as the Flask views; every other request goes
to Flask unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from alert_router.api.common import (
    STORAGE_UNAVAILABLE,
    error_body,
    ingest,
    input_status,
    storage_failure,
)
from alert_router.auth import NOT_JSON, open_write_refused, token_valid
from alert_router.errors import InputError
from alert_router.ingest import postable_alerts
from alert_router.state import RouterState

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
PATH = "/api/v2/alerts"
log = logging.getLogger(__name__)
REASONS = {400: "BAD REQUEST", 401: "UNAUTHORIZED", 413: "REQUEST ENTITY TOO LARGE",
           415: "UNSUPPORTED MEDIA TYPE", 500: "INTERNAL SERVER ERROR",
           503: "SERVICE UNAVAILABLE"}


def _json_error(start_response: StartResponse, code: int, reason: str,
                message: str) -> list[bytes]:
    body = error_body(PATH, code, message)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if code == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    start_response(f"{code} {reason}", headers)
    return [body]


class FastIngest:
    """WSGI middleware answering POST /api/v2/alerts without entering Flask."""

    def __init__(self, app: WsgiApp, state: RouterState) -> None:
        self.app = app
        self.state = state
        self._observe = state.metrics.request_seconds.labels(PATH, "POST").observe

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            return self._handle(environ, start_response)
        finally:
            self._observe(time.perf_counter() - started)

    def _handle(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            return self._ingest(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - a JSON answer instead of gunicorn's HTML 500
            if storage_failure(exc):
                log.error("POST %s: %s", PATH, STORAGE_UNAVAILABLE, exc_info=exc)
                return _json_error(start_response, 503, REASONS[503], STORAGE_UNAVAILABLE)
            log.error("POST %s failed", PATH, exc_info=exc)
            return _json_error(start_response, 500, REASONS[500],
                               "internal error (see the router's log)")

    def _ingest(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        st = self.state
        auth = st.config.auth
        content_type = environ.get("CONTENT_TYPE")
        if auth.allow_unauthenticated_writes and not auth.tokens:
            if open_write_refused("POST", content_type):
                return _json_error(start_response, 415, REASONS[415], NOT_JSON)
        elif not token_valid(environ.get("HTTP_AUTHORIZATION"), auth.tokens):
            return _json_error(start_response, 401, "UNAUTHORIZED",
                               "a valid 'Authorization: Bearer <token>' header is required")
        limit = st.config.max_request_bytes
        too_large = f"body: larger than {limit} bytes"
        header = environ.get("CONTENT_LENGTH")
        if header:
            try:
                length = int(header)
            except ValueError:
                return _json_error(start_response, 400, "BAD REQUEST", "Content-Length: invalid")
            if length > limit:
                return _json_error(start_response, 413, "REQUEST ENTITY TOO LARGE", too_large)
            data = environ["wsgi.input"].read(length)
        else:  # chunked: read at most one byte past the limit
            data = environ["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                return _json_error(start_response, 413, "REQUEST ENTITY TOO LARGE", too_large)
        try:
            ingest(st, "api", postable_alerts, data, time.time(), content_type)
        except InputError as exc:
            code = input_status(exc)
            return _json_error(start_response, code, REASONS[code], str(exc))
        start_response("200 OK", [("Content-Length", "0")])
        return []
