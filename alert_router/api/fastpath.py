"""The router's one ingest path: POST of alerts in every accepted form, answered in WSGI.

Prometheus and the rule engine post every evaluation; Flask's request context, routing and
hooks cost more than the work itself for small batches, so no ingest request enters Flask.
Same auth rule (alert_router.auth.refusal), size limit, validation, storage, metrics and
JSON errors as the Flask views; every other request goes to Flask unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from alert_router.api.common import (
    STORAGE_UNAVAILABLE,
    Parser,
    error_body,
    ingest,
    input_status,
    storage_failure,
)
from alert_router.auth import refusal
from alert_router.errors import InputError
from alert_router.ingest import (
    alertmanager_webhook,
    generic_alerts,
    grafana_webhook,
    postable_alerts,
)
from alert_router.state import RouterState

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
PATH = "/api/v2/alerts"
# path -> (ingest source, parser). Alertmanager's v2 API, a real Alertmanager's webhook
# (payload version "4"), Grafana's webhook contact point, the generic documented form.
ENDPOINTS: dict[str, tuple[str, Parser]] = {
    PATH: ("api", postable_alerts),
    "/api/v1/webhook/alertmanager": ("alertmanager", alertmanager_webhook),
    "/api/v1/webhook/grafana": ("grafana", grafana_webhook),
    "/api/v1/alerts": ("generic", generic_alerts),
}
log = logging.getLogger(__name__)
REASONS = {
    400: "BAD REQUEST",
    401: "UNAUTHORIZED",
    405: "METHOD NOT ALLOWED",
    413: "REQUEST ENTITY TOO LARGE",
    415: "UNSUPPORTED MEDIA TYPE",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}


def _json_error(
    start_response: StartResponse,
    path: str,
    code: int,
    message: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = error_body(path, code, message)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *(extra or []),
    ]
    if code == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    start_response(f"{code} {REASONS[code]}", headers)
    return [body]


class FastIngest:
    """WSGI middleware answering every ingest POST (ENDPOINTS) without entering Flask."""

    def __init__(self, app: WsgiApp, state: RouterState) -> None:
        self.app = app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        endpoint = ENDPOINTS.get(path) if isinstance(path, str) else None
        if endpoint is None:
            return self.app(environ, start_response)
        assert isinstance(path, str)
        if environ.get("REQUEST_METHOD") != "POST":
            if path == PATH:  # GET: Alertmanager's alert list, a Flask view
                return self.app(environ, start_response)
            return _json_error(
                start_response,
                path,
                405,
                "The method is not allowed for the requested URL.",
                [("Allow", "POST")],
            )
        return self._handle(environ, start_response, path, *endpoint)

    def _handle(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        path: str,
        source: str,
        parser: Parser,
    ) -> list[bytes]:
        try:
            return self._ingest(environ, start_response, path, source, parser)
        except Exception as exc:  # noqa: BLE001 - a JSON answer instead of gunicorn's HTML 500
            if storage_failure(exc):
                log.error("POST %s: %s", path, STORAGE_UNAVAILABLE, exc_info=exc)
                return _json_error(start_response, path, 503, STORAGE_UNAVAILABLE)
            log.error("POST %s failed", path, exc_info=exc)
            return _json_error(start_response, path, 500, "internal error (see the router's log)")

    def _ingest(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        path: str,
        source: str,
        parser: Parser,
    ) -> list[bytes]:
        st = self.state
        content_type = environ.get("CONTENT_TYPE")
        refused = refusal(
            st.config.auth, "POST", path, content_type, environ.get("HTTP_AUTHORIZATION")
        )
        if refused is not None:
            return _json_error(start_response, path, *refused)
        limit = st.config.max_request_bytes
        too_large = f"body: larger than {limit} bytes"
        header = environ.get("CONTENT_LENGTH")
        if header:
            try:
                length = int(header)
            except ValueError:
                return _json_error(start_response, path, 400, "Content-Length: invalid")
            if length > limit:
                return _json_error(start_response, path, 413, too_large)
            data = environ["wsgi.input"].read(length)
        else:  # chunked: read at most one byte past the limit
            data = environ["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                return _json_error(start_response, path, 413, too_large)
        try:
            ingest(st, source, parser, data, time.time(), content_type)
        except InputError as exc:
            return _json_error(start_response, path, input_status(exc), str(exc))
        start_response("200 OK", [("Content-Length", "0")])
        return []
