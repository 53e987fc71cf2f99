"""Status, receivers, the OpenAPI document, and the small web page."""

from __future__ import annotations

import re
import time
from itertools import islice
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify
from jinja2 import Environment

from alert_router.api.common import register_error_handlers, state
from alert_router.api.page import PAGE
from alert_router.limits import PAGE_ROWS
from alert_router.matchers import printable
from alert_router.openapi import openapi_document
from alert_router.timeutil import format_time

bp = Blueprint("status", __name__)
register_error_handlers(bp)
_SECRET_KEY = re.compile(r"password|secret|token|key|url|credentials", re.IGNORECASE)
# finalize: a value stored before input was checked (a lone surrogate) is shown as U+FFFD
# instead of failing to encode the whole page.
_env = Environment(autoescape=True,
                   finalize=lambda value: printable(value) if isinstance(value, str) else value)
_page = _env.from_string(PAGE)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<secret>" if _SECRET_KEY.search(str(k)) and not str(k).endswith("_file")
                and isinstance(v, str) else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def redact(text: str) -> str:
    """The config YAML with every secret-looking value shown as <secret>."""
    try:
        return yaml.safe_dump(_redact(yaml.safe_load(text)), sort_keys=False)
    except yaml.YAMLError:
        return "<unreadable>"


@bp.get("/api/v2/status")
def status() -> Response:
    """Alertmanager's status shape (amtool config show reads it)."""
    st = state()
    return jsonify({
        "cluster": {"status": "disabled", "peers": [], "name": ""},
        "versionInfo": {"version": "stacksense-router", "revision": "", "branch": "",
                        "buildUser": "", "buildDate": "", "goVersion": ""},
        "config": {"original": redact(st.config.original)},
        "uptime": format_time(st.started_at),
    })


@bp.get("/api/v2/receivers")
def receivers() -> Response:
    """The configured receivers' names."""
    return jsonify([{"name": name} for name in state().config.receivers])


@bp.get("/api/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of this API."""
    return jsonify(openapi_document())


@bp.get("/")
def index() -> Response:
    """Alerts, incidents and silences on one page (every value HTML-escaped)."""
    from alert_router.api.alerts import gettable_iter

    now = time.time()
    st = state()
    # Bounded: PAGE_ROWS rows per table; the page says how many more the API has.
    alerts = list(islice(gettable_iter(now, firing_only=True), PAGE_ROWS + 1))
    silences = [s.to_api(now) for s in st.store.list_silences() if s.state(now) != "expired"]
    html = _page.render(
        alerts=alerts[:PAGE_ROWS],
        more_alerts=len(alerts) > PAGE_ROWS,
        firing_count=st.store.count_alerts(now) if len(alerts) > PAGE_ROWS else len(alerts),
        incidents=st.store.list_incidents(limit=50),
        silences=silences[:PAGE_ROWS],
        more_silences=len(silences) - PAGE_ROWS,
        page_rows=PAGE_ROWS,
        fmt=lambda ts: format_time(ts)[:19].replace("T", " "),
    )
    return Response(html, mimetype="text/html")
