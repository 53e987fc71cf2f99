"""Helpers the views share: app state, JSON bodies, accepting normalised alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, request

from alert_router.errors import InputError
from alert_router.state import RouterState

Parser = Callable[..., tuple[list[dict[str, Any]], list[str]]]


def state() -> RouterState:
    """The current app's RouterState."""
    result: RouterState = current_app.extensions["stacksense"]
    return result


def json_body() -> Any:
    """The request body parsed as JSON, or a 400 saying why it is not."""
    data = request.get_data(cache=False)
    if not data:
        abort(400, description="body: empty, a JSON document is required")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        abort(400, description=f"body: invalid JSON: {exc}")


def accept_alerts(source: str, parser: Parser) -> Response:
    """Validate the body with `parser`, store the valid alerts durably, then answer."""
    body = json_body()
    now = time.time()
    st = state()
    try:
        good, errors = parser(body, now=now)
    except InputError as exc:
        st.metrics.invalid.labels(source).inc()
        abort(400, description=str(exc))
    if good:
        # One row per request: the whole batch is durable in one commit before the reply.
        st.store.add_inbox(source, json.dumps(good), now)
        st.metrics.received.labels(source).inc(len(good))
        st.wake()
    if errors:
        st.metrics.invalid.labels(source).inc(len(errors))
        shown = "; ".join(errors[:20]) + ("; ..." if len(errors) > 20 else "")
        abort(400, description=f"{len(errors)} invalid alert(s) rejected, {len(good)} valid "
                               f"alert(s) accepted: {shown}")
    return Response(status=200)
