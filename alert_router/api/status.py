"""Status, receivers, the OpenAPI document, and the small web page."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Blueprint, Response, jsonify
from jinja2 import Environment

from alert_router.api.common import register_error_handlers, state
from alert_router.api.page import PAGE
from alert_router.limits import PAGE_ROWS
from alert_router.matchers import printable
from alert_router.notify.http import safe_target
from alert_router.openapi import openapi_document
from alert_router.timeutil import format_time

bp = Blueprint("status", __name__)
register_error_handlers(bp)
_SECRET_KEY = re.compile(r"password|secret|token|key|url|credentials", re.IGNORECASE)
# finalize: a value stored before input was checked (a lone surrogate) is shown as U+FFFD
# instead of failing to encode the whole page.
_env = Environment(
    autoescape=True, finalize=lambda value: printable(value) if isinstance(value, str) else value
)
_page = _env.from_string(PAGE)


# What Alertmanager's config knows: amtool parses /api/v2/status strictly, so the router's
# own sections and keys are left out of what it is shown.
AM_TOP_KEYS = (
    "global",
    "route",
    "inhibit_rules",
    "receivers",
    "templates",
    "time_intervals",
    "mute_time_intervals",
)
ROUTER_ONLY_GLOBAL_KEYS = {"webhook_resolve_timeout"}
ROUTER_ONLY_ROUTE_KEYS = {"receivers_by_label"}


def _secret_value(value: str) -> str:
    # A URL keeps its scheme and host, so it still parses as one (Alertmanager's webhook
    # url must); its path and query, where tokens live, and any credentials are hidden.
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return f"{safe_target(value)}/<secret>"
    return "<secret>"


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _secret_value(v)
            if _SECRET_KEY.search(str(k)) and not str(k).endswith("_file") and isinstance(v, str)
            else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _am_route(route: Any) -> Any:
    if not isinstance(route, dict):
        return route
    out = {k: v for k, v in route.items() if k not in ROUTER_ONLY_ROUTE_KEYS}
    if isinstance(out.get("routes"), list):
        out["routes"] = [_am_route(r) for r in out["routes"]]
    return out


def alertmanager_view(raw: Any) -> Any:
    """The Alertmanager part of a router config (what amtool config show/routes parse)."""
    if not isinstance(raw, dict):
        return raw
    view = {k: raw[k] for k in AM_TOP_KEYS if k in raw}
    if isinstance(view.get("global"), dict):
        view["global"] = {
            k: v for k, v in view["global"].items() if k not in ROUTER_ONLY_GLOBAL_KEYS
        }
    if "route" in view:
        view["route"] = _am_route(view["route"])
    return view


def redact(text: str) -> str:
    """The config YAML (its Alertmanager part) with every secret-looking value hidden."""
    try:
        return yaml.safe_dump(_redact(alertmanager_view(yaml.safe_load(text))), sort_keys=False)
    except yaml.YAMLError:
        return "<unreadable>"


@bp.get("/api/v2/status")
def status() -> Response:
    """Alertmanager's status shape (amtool config show reads it)."""
    st = state()
    return jsonify(
        {
            "cluster": {"status": "disabled", "peers": [], "name": ""},
            "versionInfo": {
                "version": "stacksense-router",
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            },
            "config": {"original": redact(st.config.original)},
            "uptime": format_time(st.started_at),
        }
    )


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
    from alert_router.api.alerts import page_of_firing

    now = time.time()
    st = state()
    # Bounded: PAGE_ROWS rows per table; the page says how many more the API has.
    alerts = page_of_firing(now, PAGE_ROWS + 1, 0)
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
