"""Helpers the views share: app state, JSON bodies, accepting normalised alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, request

from alert_router.errors import InputError
from alert_router.matchers import Matcher, parse_matcher
from alert_router.state import RouterState

Parser = Callable[..., tuple[list[dict[str, Any]], list[str]]]


def state() -> RouterState:
    """The current app's RouterState."""
    result: RouterState = current_app.extensions["stacksense"]
    return result


def parse_json(data: bytes) -> Any:
    """`data` parsed as JSON; InputError says why it is not."""
    if not data:
        raise InputError("body: empty, a JSON document is required")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"body: invalid JSON: {exc}") from None


def json_body() -> Any:
    """The request body parsed as JSON, or a 400 saying why it is not."""
    try:
        return parse_json(request.get_data(cache=False))
    except InputError as exc:
        abort(400, description=str(exc))


def ingest(st: RouterState, source: str, parser: Parser, data: bytes, now: float) -> None:
    """Validate and durably store one request's alerts; InputError names what was rejected."""
    body = parse_json(data)
    try:
        good, errors = parser(body, now=now)
    except InputError:
        st.metrics.invalid.labels(source).inc()
        raise
    if good:
        # One row per request: the whole batch is durable in one commit before the reply.
        if errors or source != "api":
            st.store.add_inbox(source, json.dumps(good), now)
        else:
            st.store.add_inbox(source, data.decode(), now, form="postable")
        st.metrics.received.labels(source).inc(len(good))
        st.wake()
    if errors:
        st.metrics.invalid.labels(source).inc(len(errors))
        shown = "; ".join(errors[:20]) + ("; ..." if len(errors) > 20 else "")
        raise InputError(f"{len(errors)} invalid alert(s) rejected, {len(good)} valid "
                         f"alert(s) accepted: {shown}")


def accept_alerts(source: str, parser: Parser) -> Response:
    """Validate the body with `parser`, store the valid alerts durably, then answer."""
    try:
        ingest(state(), source, parser, request.get_data(cache=False), time.time())
    except InputError as exc:
        abort(400, description=str(exc))
    return Response(status=200)


def filter_matchers() -> list[Matcher]:
    """The request's `filter=` matchers (Alertmanager's list filters); 400 names a bad one."""
    try:
        return [parse_matcher(f) for f in request.args.getlist("filter")]
    except ValueError as exc:
        abort(400, description=f"filter: {exc}")
