"""The console's pages and form actions (server-rendered; every value autoescaped)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from alert_router.api.common import storage_failure
from alert_router.auth import token_valid
from alert_router.console import alerts as al
from alert_router.console import charts, exporter_api, fleet, sources
from alert_router.console import session as sess
from alert_router.console.settings import ConsoleConfig
from alert_router.errors import InputError
from alert_router.incidents import Incidents, TransitionError
from alert_router.matchers import parse_matcher, parse_matchers
from alert_router.state import RouterState

log = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/console")
RANGES = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
MAX_RANGE = 90 * 86400.0
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "close": "closed"}
MAX_REASON = 1000
View = str | Response | BaseResponse | tuple[str, int]


def st() -> RouterState:
    result: RouterState = current_app.extensions["stacksense"]
    return result


def ccfg() -> ConsoleConfig:
    return st().config.console


def fmt_time(t: float | None) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def iso(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@bp.app_template_global()
def csrf_token() -> str:
    return sess.csrf_token()


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "user": sess.current_user(),
        "fmt_time": fmt_time,
        "iso": iso,
        "pct": pct,
        "ago": fleet.ago,
        "duration": fleet.duration,
        "now": time.time(),
        "refresh_ms": int(ccfg().refresh_interval * 1000),
        "op_of": al.op_of,
        "grafana_url": ccfg().grafana_url,
    }


@bp.before_request
def _protect() -> None:
    sess.check_csrf()


@bp.after_request
def _headers(response: Response) -> Response:
    # Scripts and styles from the console's own files only: an escaped value that somehow
    # reached a page as markup still could not run.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    if _partial() and response.status_code == 200:
        # The live script replaces a region only with a fragment marked so: a login page
        # (after the session ended) or an error page never lands inside the region.
        response.headers["X-Console-Partial"] = "1"
    return response


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    return render_template("console/error.html", code=code, message=exc.description), code


@bp.app_errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if storage_failure(exc):
        log.error("console %s %s: store unavailable", request.method, request.path, exc_info=exc)
        return render_template(
            "console/error.html",
            code=503,
            message="The router's store cannot be read or written "
            "right now (disk full or database down).",
        ), 503
    log.error("console %s %s failed", request.method, request.path, exc_info=exc)
    return render_template(
        "console/error.html", code=500, message="Internal error (see the router's log)."
    ), 500


def _partial() -> bool:
    return request.args.get("partial") == "1"


def _text(name: str, most: int = 200) -> str:
    value = request.args.get(name, "")
    if len(value) > most:
        abort(400, description=f"{name}: at most {most} characters")
    return value


def _form(name: str, most: int = MAX_REASON) -> str:
    value = request.form.get(name, "")
    if len(value) > most:
        abort(400, description=f"{name}: at most {most} characters")
    return value


# ---- login
@bp.get("/login")
def login() -> View:
    return render_template(
        "console/login.html",
        next=sess.safe_next(request.args.get("next")),
        has_users=bool(sess.users().list()),
    )


@bp.post("/login")
def login_post() -> View:
    name, password = _form("name", 64), _form("password", 1024)
    target = sess.safe_next(request.form.get("next"))
    users = sess.users()
    now = time.time()
    ip = sess.client_ip()
    if users.throttled(name, ip, now):
        log.warning("console login refused (throttled) for %r from %s", name, ip)
        return render_template(
            "console/login.html",
            next=target,
            has_users=True,
            error="Too many failed logins: wait 15 minutes and try again.",
        ), 429
    user = users.authenticate(name, password, ip, now)
    # Names are quoted with %r: a name with a newline cannot forge a log line.
    if user is None:
        log.warning("console login failed for %r from %s", name, ip)
        return render_template(
            "console/login.html", next=target, has_users=True, error="Wrong name or password."
        ), 401
    sess.start_session(user)
    log.info("console login: %s (%s) from %s", user.name, user.role, ip)
    return redirect(target)


@bp.post("/logout")
def logout() -> BaseResponse:
    from flask import session

    session.clear()
    return redirect(url_for("console.login"))


# ---- fleet
def _fleet_args() -> dict[str, str]:
    status = _text("status", 20)
    if status and status not in fleet.STATUSES:
        abort(400, description=f"status: one of {', '.join(fleet.STATUSES)}")
    sort = _text("sort", 20) or "status"
    if sort not in fleet.SORTS:
        abort(400, description=f"sort: one of {', '.join(fleet.SORTS)}")
    page = _text("page", 6) or "1"
    if not page.isdigit() or int(page) < 1:
        abort(400, description="page: a positive number")
    return {"status": status, "label": _text("label"), "q": _text("q"), "sort": sort, "page": page}


def _load_fleet(args: dict[str, str]) -> fleet.Fleet:
    return fleet.load_fleet(
        ccfg(),
        status=args["status"],
        label=args["label"],
        text=args["q"],
        sort=args["sort"],
        page=int(args["page"]),
    )


@bp.get("/")
@sess.require("viewer")
def fleet_view() -> View:
    args = _fleet_args()
    data = _load_fleet(args)
    template = "console/_fleet_live.html" if _partial() else "console/fleet.html"
    return render_template(
        template,
        fleet=data,
        args=args,
        statuses=fleet.STATUSES,
        page_rows=fleet.PAGE_ROWS,
        sorts=fleet.SORTS,
        updated=time.time(),
        ccfg=ccfg(),
    )


@bp.get("/fleet", endpoint="fleet")
def fleet_alias() -> BaseResponse:
    return redirect(url_for("console.fleet_view"))


@bp.get("/api/fleet")
def fleet_json() -> Response:
    """The fleet as JSON, for the console's own scripts and for machines (bearer token)."""
    if sess.current_user() is None and not token_valid(
        request.headers.get("Authorization"), st().config.auth.tokens
    ):
        abort(401, description="log in or send 'Authorization: Bearer <token>'")
    data = _load_fleet(_fleet_args())
    return jsonify(
        {
            "counts": data.counts,
            "errors": data.errors,
            "total": data.total,
            "matched": data.matched,
            "page": data.page,
            "pages": data.pages,
            "servers": [asdict(r) for r in data.rows],
        }
    )


# ---- one server
def _range() -> tuple[float, float, str]:
    now = time.time()
    name = _text("range", 10) or "1h"
    if name in RANGES:
        return now - RANGES[name], now, name
    if name != "custom":
        abort(400, description="range: 1h, 24h, 7d or custom (with start and end)")
    try:
        start = _parse_local(_text("start", 40))
        end = _parse_local(_text("end", 40)) if _text("end", 40) else now
    except ValueError as exc:
        abort(400, description=f"custom range: {exc}")
    if not 0 < end - start <= MAX_RANGE:
        abort(400, description="custom range: end must be after start, at most 90 days")
    return start, end, "custom"


def _parse_local(text: str) -> float:
    """A datetime-local value (YYYY-MM-DDTHH:MM, read as UTC) or unix seconds."""
    import calendar

    if not text:
        raise ValueError("start is required")
    try:
        value = float(text)
    except ValueError:
        try:
            value = float(calendar.timegm(time.strptime(text[:16], "%Y-%m-%dT%H:%M")))
        except ValueError:
            raise ValueError(f"{text!r}: want YYYY-MM-DDTHH:MM (UTC)") from None
    if not math.isfinite(value):
        raise ValueError("not a finite time")
    return value


@bp.get("/servers/<path:name>")
@sess.require("viewer")
def server_view(name: str) -> View:
    if len(name) > 253:
        abort(404, description="no such server")
    cfg = ccfg()
    got = sources.rules_server(cfg, name)
    if got.error == "not found":
        abort(404, description=f"The rule engine does not know a server named {name!r}.")
    view = got.data if isinstance(got.data, dict) else {}
    now = time.time()
    store = st().store
    alerts = al.alert_views(store, st().config, now, server=name)
    incidents = [i for i in store.list_incidents(server=name, limit=50)]
    if _partial():
        return render_template(
            "console/_server_live.html",
            name=name,
            view=view,
            error=got.error,
            alerts=alerts,
            incidents=incidents,
            updated=now,
        )
    start, end, range_name = _range()
    step = charts.step_for(end - start)
    chart_list = []
    for title, (expr, unit) in sources.chart_queries(name).items():
        series = sources.prom_range(cfg, expr, start, end, step)
        chart_list.append(
            {
                "title": title,
                "error": series.error,
                "svg": charts.svg_chart(title, series.data or [], start, end, unit),
            }
        )
    exporter_view = None
    user = sess.current_user()
    if user is not None and user.can("operator"):
        exporter_view = exporter_api.server(cfg, name)
    history = (
        [h for h in view.get("history", []) if isinstance(h, dict)][-50:]
        if isinstance(view.get("history"), list)
        else []
    )
    return render_template(
        "console/server.html",
        name=name,
        view=view,
        error=got.error,
        alerts=alerts,
        incidents=incidents,
        charts=chart_list,
        range_name=range_name,
        start=start,
        end=end,
        ranges=RANGES,
        status_history=list(reversed(history)),
        events=al.history(store, server=name, limit=50),
        updated=now,
        exporter=exporter_view,
    )


@bp.post("/servers/<path:name>/silence")
@sess.require("operator")
def server_silence(name: str) -> BaseResponse:
    user = sess.current_user()
    assert user is not None
    now = time.time()
    comment = _form("comment") or "maintenance"
    try:
        silence = al.silence_from_form(
            {"duration_hours": _form("duration_hours", 20), "comment": comment},
            [{"name": "server", "value": name, "isRegex": False, "isEqual": True}],
            user.name,
            now,
        )
    except InputError as exc:
        abort(400, description=str(exc))
    al.save_silence(st().store, silence, user.name, now)
    st().wake()
    flash(f"Silenced {name} until {fmt_time(silence.ends_at)}.", "ok")
    return redirect(url_for("console.server_view", name=name))


def _server_event(
    name: str, transition: str, reason: str = "", details: dict[str, Any] | None = None
) -> None:
    """A line in the router's history: who changed or tested a server through the console."""
    import json

    from alert_router.store import HistoryEvent

    user = sess.current_user()
    st().store.add_history(
        [
            HistoryEvent(
                time.time(),
                "server",
                name,
                name,
                transition,
                actor=user.name if user else "console",
                reason=reason[:MAX_REASON],
                details=json.dumps(details or {}),
            )
        ]
    )


def _server_name(name: str) -> str:
    if not name or len(name) > 253:
        abort(404, description="no such server")
    return name


@bp.post("/servers/<path:name>/test")
@sess.require("operator")
def server_test(name: str) -> BaseResponse:
    name = _server_name(name)
    got = exporter_api.run_test_probe(ccfg(), name)
    if got.status == 200:  # a probe ran (whatever its outcome): worth a history line
        _server_event(name, "tested", got.message, {"success": got.ok})
    flash(
        got.message if got.status == 200 else f"Test probe of {name}: {got.message}",
        "ok" if got.ok else "error",
    )
    return redirect(url_for("console.server_view", name=name))


@bp.post("/servers/<path:name>/diagnose")
@sess.require("operator")
def server_diagnose(name: str) -> View:
    """Runs the exporter's diagnosis now and shows it on a page of its own: the report is
    too large for a flash (the session cookie), and a person waits for it anyway."""
    name = _server_name(name)
    alertname = _form("alertname", 200).strip()
    got = exporter_api.diagnose(ccfg(), name, alertname)
    if got.ok:  # commands ran on the host: worth a history line
        _server_event(
            name,
            "diagnosed",
            got.message,
            {"complete": bool(got.data.get("complete")), "alertname": alertname},
        )
        log.info("console: %r diagnosed %r", _actor(), name)
    # Always 200: an exporter that failed or is slow is a message on this page (the error
    # page would lose the way back and the button to try again).
    return render_template(
        "console/diagnose.html",
        name=name,
        answer=got,
        report=got.data if got.ok else None,
        alertname=alertname,
        updated=time.time(),
    )


@bp.post("/servers/<path:name>/<any(suspend, resume):action>")
@sess.require("operator")
def server_suspend(name: str, action: str) -> BaseResponse:
    name = _server_name(name)
    got = exporter_api.set_suspended(ccfg(), name, action == "suspend")
    if got.ok:
        _server_event(name, "suspended" if action == "suspend" else "resumed", got.message)
        log.info("console: %r %s monitoring of %r", _actor(), action, name)
        flash(got.message, "ok")
    else:
        flash(f"Could not {action} monitoring of {name}: {got.message}", "error")
    return redirect(url_for("console.server_view", name=name))


def _actor() -> str:
    user = sess.current_user()
    return user.name if user else ""


# ---- alerts and incidents
def _flag(name: str) -> bool:
    return request.args.get(name) in ("1", "on", "true")


@bp.get("/alerts")
@sess.require("viewer")
def alerts_view() -> View:
    now = time.time()
    store = st().store
    show = {"resolved": _flag("resolved"), "info": _flag("info")}
    items = al.alert_views(
        store, st().config, now, show_resolved=show["resolved"], show_info=show["info"]
    )
    incidents = [
        i
        for i in store.list_incidents(limit=200)
        if i["state"] in ("open", "acknowledged") or (show["resolved"] and i["state"] == "resolved")
    ]
    if not show["info"]:
        incidents = [i for i in incidents if i["severity"] != "info"]
    template = "console/_alerts_live.html" if _partial() else "console/alerts.html"
    return render_template(
        template,
        groups=al.grouped(items),
        count=len(items),
        incidents=incidents,
        show=show,
        updated=now,
    )


@bp.get("/incidents")
@sess.require("viewer")
def incidents_view() -> View:
    wanted = _text("state", 20)
    if wanted and wanted not in ("open", "acknowledged", "resolved", "closed"):
        abort(400, description="state: open, acknowledged, resolved or closed")
    rows = st().store.list_incidents(state=wanted or None, limit=500)
    template = "console/_incidents_live.html" if _partial() else "console/incidents.html"
    return render_template(template, incidents=rows, wanted=wanted, updated=time.time())


@bp.get("/incidents/<int:incident_id>")
@sess.require("viewer")
def incident_view(incident_id: int) -> View:
    store = st().store
    incident = store.get_incident(incident_id) if incident_id < 2**63 else None
    if incident is None:
        abort(404, description=f"incident {incident_id} not found")
    events = store.query_history(kind="incident", subject=str(incident_id), by_id=True)
    now = time.time()
    alerts = sorted(store.get_alerts(incident["alerts"][:200]).values(), key=lambda a: a.starts_at)
    return render_template(
        "console/incident.html",
        incident=incident,
        events=events,
        alerts=[(a, a.firing(now)) for a in alerts],
    )


@bp.post("/incidents/<int:incident_id>/<action>")
@sess.require("operator")
def incident_action(incident_id: int, action: str) -> BaseResponse:
    if action not in ACTIONS:
        abort(404, description="unknown action")
    user = sess.current_user()
    assert user is not None
    reason = _form("reason").strip()
    if action != "acknowledge" and not reason:
        abort(400, description=f"reason: say why you {action} this incident")
    try:
        Incidents(st().store).transition(
            min(incident_id, 2**63 - 1),
            ACTIONS[action],
            actor=user.name,
            reason=reason,
            now=time.time(),
        )
    except LookupError as exc:
        abort(404, description=str(exc))
    except TransitionError as exc:
        abort(409, description=str(exc))
    flash(f"Incident #{incident_id} {ACTIONS[action]} by {user.name}.", "ok")
    return redirect(
        sess.safe_next(request.form.get("next"))
        if request.form.get("next")
        else url_for("console.alerts_view")
    )


# ---- silences
def _prefill() -> dict[str, Any]:
    """Matchers, duration and comment for the silence form, from an alert or the URL."""
    rows: list[tuple[str, str, str]] = []
    fingerprint = _text("fingerprint", 64)
    if fingerprint:
        alert = st().store.get_alerts([fingerprint]).get(fingerprint)
        if alert is None:
            abort(404, description="that alert is no longer stored")
        # Every label, as Alertmanager's UI does: the person removes what should not match.
        rows = [(k, "=", v) for k, v in sorted(alert.labels.items())][:20]
    try:
        parsed = [parse_matcher(text) for text in request.args.getlist("matcher")[:20]]
        # Alertmanager's link shape, as email and Slack notifications build it:
        # ?filter={alertname="X",server="Y"}
        parsed += parse_matchers(_text("filter", 4000))[:20] if _text("filter", 4000) else []
    except ValueError as exc:
        abort(400, description=f"matcher: {exc}")
    rows += [(m.name, al.op_of(m), m.value) for m in parsed]
    return {
        "rows": rows or [("server", "=", "")],
        "duration": _text("duration_hours", 10) or "2",
        "comment": _text("comment", MAX_REASON),
        "id": "",
    }


@bp.get("/silences")
@sess.require("viewer")
def silences_view() -> View:
    now = time.time()
    return render_template(
        "console/silences.html",
        silences=al.silences(st().store, now, show_expired=_flag("expired")),
        expired=_flag("expired"),
    )


@bp.get("/silences/new")
@sess.require("operator")
def silence_form() -> View:
    edit = _text("edit", 64)
    if edit:
        old = st().store.get_silence(edit)
        if old is None:
            abort(404, description="no such silence")
        left = max(old.ends_at - time.time(), 0) / 3600
        form = {
            "rows": [(m.name, al.op_of(m), m.value) for m in old.matchers],
            "duration": f"{max(left, 0.25):.2f}",
            "comment": old.comment,
            "id": old.id,
        }
    else:
        form = _prefill()
    return render_template("console/silence_form.html", form=form)


@bp.post("/silences")
@sess.require("operator")
def silence_save() -> BaseResponse:
    user = sess.current_user()
    assert user is not None
    now = time.time()
    store = st().store
    try:
        matchers = al.matchers_from_form(
            request.form.getlist("m_name")[:20],
            request.form.getlist("m_value")[:20],
            request.form.getlist("m_op")[:20],
        )
        silence = al.silence_from_form(
            {"duration_hours": _form("duration_hours", 20), "comment": _form("comment")},
            matchers,
            user.name,
            now,
        )
    except InputError as exc:
        abort(400, description=str(exc))
    old_id = _form("id", 64)
    if old_id:
        # An edit, as Alertmanager does it for changed matchers or times: the old silence
        # expires and a new one takes its place (both recorded in the history).
        if al.expire_silence(store, old_id, user.name, now) is None:
            abort(404, description="the silence being edited no longer exists")
    al.save_silence(store, silence, user.name, now)
    st().wake()
    flash(f"Silence created, until {fmt_time(silence.ends_at)}.", "ok")
    return redirect(url_for("console.silences_view"))


@bp.post("/silences/<silence_id>/expire")
@sess.require("operator")
def silence_expire(silence_id: str) -> BaseResponse:
    user = sess.current_user()
    assert user is not None
    if al.expire_silence(st().store, silence_id[:64], user.name, time.time()) is None:
        abort(404, description="no such silence")
    st().wake()
    flash("Silence expired.", "ok")
    return redirect(url_for("console.silences_view"))


# ---- history
@bp.get("/history")
@sess.require("viewer")
def history_view() -> View:
    server = _text("server", 253) or None
    return render_template(
        "console/history.html",
        events=al.history(st().store, server=server, limit=300),
        server=server or "",
    )


# ---- users (admin)
@bp.get("/users")
@sess.require("admin")
def users_view() -> View:
    return render_template("console/users.html", users=sess.users().list())


@bp.post("/users")
@sess.require("admin")
def users_change() -> View:
    from alert_router.console.users import UserError, generate_password

    users = sess.users()
    action, name = _form("action", 20), _form("name", 64)
    me = sess.current_user()
    assert me is not None
    try:
        if action == "add":
            password = generate_password()
            users.add(name, _form("role", 20), password)
            # Rendered in this response, not flashed: a flash travels in the session cookie
            # (signed, not encrypted) and would keep the password in the browser's storage.
            return render_template(
                "console/users.html", users=users.list(), new_user=name, new_password=password
            )
        elif action == "set-role":
            if name == me.name and _form("role", 20) != "admin":
                abort(400, description="you cannot take the admin role from yourself")
            if not users.set_role(name, _form("role", 20)):
                abort(404, description="no such user")
            flash(f"{name} is now {_form('role', 20)}.", "ok")
        elif action == "remove":
            if name == me.name:
                abort(400, description="you cannot remove yourself")
            if not users.remove(name):
                abort(404, description="no such user")
            flash(f"User {name} removed.", "ok")
        else:
            abort(400, description="action: add, set-role or remove")
    except UserError as exc:
        abort(400, description=str(exc))
    return redirect(url_for("console.users_view"))


# ---- server inventory (admin), through the exporter's API
ADD_FIELDS = ("name", "host", "port", "user", "mode", "labels")


def parse_labels(text: str) -> dict[str, str]:
    """`env=prod, rack=r1` (commas or new lines) as a mapping; the exporter checks the names."""
    labels: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"labels: {item!r} is not name=value")
        labels[key.strip()] = value.strip()
    return labels


def _inventory_page(
    code: int = 200, *, error: str = "", form: dict[str, str] | None = None
) -> tuple[str, int]:
    got = exporter_api.inventory(ccfg())
    return render_template(
        "console/inventory.html",
        servers=got.data.get("servers", []) if got.ok else [],
        list_error="" if got.ok else got.message,
        error=error,
        form=form or {"mode": "ssh"},
        exporter_url=ccfg().exporter_url,
    ), code


@bp.get("/inventory")
@sess.require("admin")
def inventory_view() -> View:
    return _inventory_page()


@bp.post("/inventory")
@sess.require("admin")
def inventory_add() -> View:
    form = {k: _form(k, 2000 if k == "labels" else 253).strip() for k in ADD_FIELDS}
    try:
        labels = parse_labels(form["labels"])
    except InputError as exc:
        return _inventory_page(400, error=str(exc), form=form)
    if len(labels) > 50:
        return _inventory_page(400, error="labels: at most 50", form=form)
    # The exporter validates every field (and logs in to an ssh host once before writing);
    # the console sends what was typed, so its message names the field as typed.
    entry: dict[str, Any] = {k: form[k] for k in ("name", "host", "port", "user") if form[k]}
    entry["name"] = form["name"]
    if form["mode"] == "push":
        entry["mode"] = "push"
    elif form["mode"] not in ("", "ssh"):
        return _inventory_page(400, error="mode: ssh or push", form=form)
    if labels:
        entry["labels"] = labels
    got = exporter_api.add(ccfg(), entry)
    if not got.ok:
        # The exporter's 4xx (invalid field, login refused) is the user's to fix: 400 with the
        # form kept; an exporter that cannot be reached or failed is a 502 with the same page.
        code = 400 if 400 <= got.status < 500 and got.status != 401 else 502
        return _inventory_page(code, error=f"Not added: {got.message}", form=form)
    _server_event(form["name"], "added", got.message, entry)
    log.info("console: %r added server %r to the inventory", _actor(), form["name"])
    flash(got.message, "ok")
    return redirect(url_for("console.inventory_view"))


@bp.get("/inventory/<path:name>/remove")
@sess.require("admin")
def inventory_remove_confirm(name: str) -> View:
    return render_template("console/inventory_remove.html", name=_server_name(name))


@bp.post("/inventory/<path:name>/remove")
@sess.require("admin")
def inventory_remove(name: str) -> View:
    name = _server_name(name)
    if _form("confirm", 10) != "yes":
        return render_template("console/inventory_remove.html", name=name), 400
    remove_key = _form("remove_key", 10) in ("1", "on")
    got = exporter_api.remove(ccfg(), name, remove_key=remove_key)
    if not got.ok:
        flash(f"Could not remove {name}: {got.message}", "error")
        return redirect(url_for("console.inventory_view"))
    _server_event(name, "removed", got.message, {"remove_key": remove_key})
    log.info("console: %r removed server %r from the inventory", _actor(), name)
    flash(got.message, "ok")
    return redirect(url_for("console.inventory_view"))


def query_string(args: dict[str, str], **changes: str) -> str:
    merged = {k: v for k, v in {**args, **changes}.items() if v}
    return "?" + urlencode(merged) if merged else ""


bp.add_app_template_global(query_string, "query_string")
