"""The console in process (Flask test client, fake rule engine): roles, CSRF, throttling,
escaping, silences from an alert, incident transitions with who and why, hostile input."""

from __future__ import annotations

import os
import re
import stat
import time

from alert_router.console.users import Users
from tests.console.session import PASSWORD, TOKEN, csrf_of, login

XSS = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fire(app, labels, annotations=None):
    client = app.test_client()
    resp = client.post(
        "/api/v2/alerts",
        headers=AUTH,
        json=[{"labels": labels, "annotations": annotations or {"summary": "s"}}],
    )
    assert resp.status_code == 200, resp.text
    state = app.extensions["stacksense"]
    state.dispatcher.step(time.time())


def incident_ids(app):
    return [i["id"] for i in app.extensions["stacksense"].store.list_incidents()]


def test_pages_need_a_login_and_every_view_renders_for_a_viewer(app, peers):
    peers.set("web-1", "online")
    c = app.test_client()
    resp = c.get("/console/alerts")
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    login(c, "vera")
    for path in (
        "/console/",
        "/console/servers/web-1",
        "/console/alerts",
        "/console/incidents",
        "/console/silences",
        "/console/history",
    ):
        assert c.get(path).status_code == 200, path
    assert c.get("/console/silences/new").status_code == 403  # operator and up
    assert c.get("/console/users").status_code == 403  # admin only


def test_session_cookie_is_httponly_strict_and_signed_with_a_private_key(app, tmp_path):
    c = app.test_client()
    page = c.get("/console/login")
    resp = c.post(
        "/console/login", data={"name": "vera", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    mode = stat.S_IMODE(os.stat(tmp_path / "console.key").st_mode)
    assert mode == 0o600


def test_a_post_without_the_csrf_token_is_refused(app, peers):
    fire(app, {"alertname": "DiskAlmostFull", "server": "web-1", "severity": "warning"})
    c = app.test_client()
    csrf = login(c, "otto")
    [incident] = incident_ids(app)
    resp = c.post(f"/console/incidents/{incident}/acknowledge", data={"reason": "x"})
    assert resp.status_code == 403 and "CSRF" in resp.text
    resp = c.post(
        f"/console/incidents/{incident}/acknowledge", data={"reason": "x", "csrf": csrf + "x"}
    )
    assert resp.status_code == 403
    # A login form posted from elsewhere (no session, no token) is refused too.
    assert (
        app.test_client()
        .post("/console/login", data={"name": "otto", "password": PASSWORD})
        .status_code
        == 403
    )


def test_viewer_cannot_acknowledge_and_operator_acknowledges_with_who_and_why(app):
    fire(app, {"alertname": "DiskAlmostFull", "server": "web-1", "severity": "warning"})
    [incident] = incident_ids(app)
    viewer = app.test_client()
    csrf = login(viewer, "vera")
    resp = viewer.post(
        f"/console/incidents/{incident}/acknowledge", data={"reason": "mine", "csrf": csrf}
    )
    assert resp.status_code == 403
    assert "Acknowledge</button>" not in viewer.get("/console/alerts").text
    operator = app.test_client()
    csrf = login(operator, "otto")
    resp = operator.post(
        f"/console/incidents/{incident}/acknowledge", data={"reason": "looking at it", "csrf": csrf}
    )
    assert resp.status_code == 302
    store = app.extensions["stacksense"].store
    got = store.get_incident(incident)
    assert got["state"] == "acknowledged" and got["acknowledged_by"] == "otto"
    # Closing needs a reason; with one it is recorded in the incident's history.
    assert (
        operator.post(f"/console/incidents/{incident}/close", data={"csrf": csrf}).status_code
        == 400
    )
    assert (
        operator.post(
            f"/console/incidents/{incident}/close", data={"csrf": csrf, "reason": "disk grown"}
        ).status_code
        == 302
    )
    page = operator.get(f"/console/incidents/{incident}").text
    assert "disk grown" in page and "looking at it" in page and "otto" in page
    assert "DiskAlmostFull" in page and "server=web-1" in page  # its alerts
    # Acknowledging a closed incident is a 409 that says why, not a 500.
    resp = operator.post(f"/console/incidents/{incident}/acknowledge", data={"csrf": csrf})
    assert resp.status_code == 409 and "closed" in resp.text


def test_silence_from_an_alert_is_prefilled_and_mutes_it(app):
    fire(app, {"alertname": "HighLoad", "server": "db-1", "severity": "warning"})
    store = app.extensions["stacksense"].store
    [alert] = store.all_alerts()
    c = app.test_client()
    csrf = login(c, "otto")
    alerts_page = c.get("/console/alerts").text
    assert f"/console/silences/new?fingerprint={alert.fingerprint}" in alerts_page
    form = c.get(f"/console/silences/new?fingerprint={alert.fingerprint}").text
    assert 'value="HighLoad"' in form and 'value="db-1"' in form
    data = {
        "csrf": csrf,
        "m_name": ["alertname", "server", ""],
        "m_op": ["=", "=", "="],
        "m_value": ["HighLoad", "db-1", ""],
        "duration_hours": "2",
        "comment": "reboot",
    }
    assert c.post("/console/silences", data=data).status_code == 302
    [silence] = store.list_silences()
    assert silence.created_by == "otto" and silence.comment == "reboot"
    assert silence.mutes(alert.labels, time.time())
    assert "suppressed" in c.get("/console/alerts").text
    # Links from notifications can carry matchers: ?matcher=server%3Ddb-1
    form = c.get("/console/silences/new?matcher=server%3Ddb-1&comment=from+email").text
    assert 'value="db-1"' in form and 'value="from email"' in form
    # ... or Alertmanager's filter, as the notification templates build their links.
    form = c.get(
        "/console/silences/new?filter=%7Balertname%3D%22HighLoad%22%2Cserver%3D%22db-1%22%7D"
    ).text
    assert 'value="HighLoad"' in form and 'value="db-1"' in form
    # Expire it.
    assert c.post(f"/console/silences/{silence.id}/expire", data={"csrf": csrf}).status_code == 302
    assert store.get_silence(silence.id).state(time.time()) == "expired"


def test_maintenance_silence_from_the_server_page(app, peers):
    peers.set("db-1", "online")
    c = app.test_client()
    csrf = login(c, "otto")
    resp = c.post(
        "/console/servers/db-1/silence",
        data={"csrf": csrf, "duration_hours": "1", "comment": "kernel update"},
    )
    assert resp.status_code == 302
    [silence] = app.extensions["stacksense"].store.list_silences()
    assert [(m.name, m.value) for m in silence.matchers] == [("server", "db-1")]
    assert 3500 < silence.ends_at - time.time() <= 3600
    # Suspend, resume and the test probe: tests/console/test_server_actions.py.


def test_markup_in_labels_and_reasons_renders_as_text(app, peers):
    peers.set(XSS, "offline", reason="refused", reason_text=XSS)
    peers.labels[XSS] = {"team": XSS}
    fire(
        app,
        {"alertname": "X", "server": XSS, "severity": "critical"},
        {"summary": XSS, "description": XSS},
    )
    c = app.test_client()
    login(c, "vera")
    for path in ("/console/", "/console/alerts", "/console/incidents", "/console/history"):
        html = c.get(path).text
        assert "<script>document.title" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path
    resp = c.get("/console/")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_login_is_throttled_per_account_and_a_right_password_does_not_bypass_it(app):
    c = app.test_client()
    csrf = csrf_of(c.get("/console/login").text)
    for _ in range(5):
        resp = c.post(
            "/console/login", data={"name": "otto", "password": "wrong password!", "csrf": csrf}
        )
        assert resp.status_code == 401
    resp = c.post("/console/login", data={"name": "otto", "password": PASSWORD, "csrf": csrf})
    assert resp.status_code == 429 and "Too many" in resp.text
    # Another account from another address is not affected.
    other = app.test_client()
    csrf2 = csrf_of(other.get("/console/login", environ_base={"REMOTE_ADDR": "10.0.0.2"}).text)
    resp = other.post(
        "/console/login",
        data={"name": "vera", "password": PASSWORD, "csrf": csrf2},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert resp.status_code == 302


def test_removed_user_or_changed_password_ends_the_session(app):
    c = app.test_client()
    login(c, "otto")
    users = Users(app.extensions["stacksense"].store)
    users.set_password("otto", "a brand new password")
    assert c.get("/console/").status_code == 302
    login(c, "vera")
    users.remove("vera")
    assert c.get("/console/").status_code == 302


def test_admin_adds_a_user_whose_password_is_shown_once(app):
    c = app.test_client()
    csrf = login(c, "ada")
    resp = c.post(
        "/console/users", data={"csrf": csrf, "action": "add", "name": "nina", "role": "operator"}
    )
    password = re.search(r'<code id="new-password">([^<]+)</code>', resp.text).group(1)
    assert password not in str(resp.headers)  # not in the session cookie
    assert "nina" in c.get("/console/users").text
    other = app.test_client()
    login(other, "nina", password)
    assert (
        c.post(
            "/console/users", data={"csrf": csrf, "action": "add", "name": "<b>", "role": "viewer"}
        ).status_code
        == 400
    )


def test_hostile_input_gets_a_4xx_never_a_5xx(app, peers):
    peers.set("web-1", "online")
    c = app.test_client()
    csrf = login(c, "otto")
    for path in (
        "/console/?status=nope",
        "/console/?sort=evil",
        "/console/?q=" + "x" * 5000,
        "/console/servers/web-1?range=bogus",
        "/console/servers/web-1?range=custom&start=yesterday",
        "/console/servers/web-1?range=custom&start=1e400",
        "/console/servers/unknown-host",
        "/console/incidents/99999999999999999999",
        "/console/silences/new?matcher=%7B%7B",
        "/console/silences/new?fingerprint=zz",
        "/console/incidents?state=evil",
    ):
        code = c.get(path).status_code
        assert 400 <= code < 500, (path, code)
    bad_forms = [
        (
            "/console/silences",
            {
                "m_name": "server",
                "m_op": "=~",
                "m_value": "(",
                "duration_hours": "1",
                "comment": "c",
            },
        ),
        (
            "/console/silences",
            {
                "m_name": "server",
                "m_op": "=",
                "m_value": "a",
                "duration_hours": "nan",
                "comment": "c",
            },
        ),
        (
            "/console/silences",
            {
                "m_name": "server",
                "m_op": "=",
                "m_value": "a",
                "duration_hours": "1e9",
                "comment": "c",
            },
        ),
        ("/console/silences", {"m_name": "", "duration_hours": "1", "comment": "c"}),
        ("/console/servers/web-1/silence", {"duration_hours": "-1"}),
        ("/console/incidents/1/explode", {}),
        ("/console/silences/nope/expire", {}),
    ]
    for path, data in bad_forms:
        code = c.post(path, data={**data, "csrf": csrf}).status_code
        assert 400 <= code < 500, (path, data, code)
    # An encoded lone surrogate and invalid UTF-8 in a form body.
    for value in ("%ED%A0%80", "%FF%FE"):
        body = (
            f"csrf={csrf}&m_name=a&m_op=%3D&m_value={value}&duration_hours=1&comment={value}"
        ).encode()
        code = c.post(
            "/console/silences", data=body, content_type="application/x-www-form-urlencoded"
        ).status_code
        assert code < 500, (value, code)


def test_router_page_and_api_are_unchanged_and_machines_use_tokens(app, peers):
    peers.set("web-1", "warning", reason="x")
    c = app.test_client()
    assert c.get("/").status_code == 200
    assert c.get("/console/api/fleet").status_code == 401
    resp = c.get("/console/api/fleet", headers=AUTH)
    assert resp.status_code == 200 and resp.json["counts"]["warning"] == 1


def test_fleet_shows_the_rule_engine_being_down_not_an_error_page(tmp_path):
    from alert_router.app import create_app
    from tests.console.session import console_config

    app = create_app(console_config(tmp_path, "http://127.0.0.1:9"), start_background=False)
    Users(app.extensions["stacksense"].store).add("vera", "viewer", PASSWORD)
    c = app.test_client()
    login(c, "vera")
    resp = c.get("/console/")
    assert resp.status_code == 200 and "rule engine: cannot reach" in resp.text
    app.extensions["stacksense"].close()


def test_fleet_filters_sorts_and_counts(app, peers):
    peers.set("a-online", "online")
    peers.set("b-offline", "offline", reason="refused", reason_text="connection refused")
    peers.set("c-warning", "warning")
    peers.set("d-pending", "pending")
    peers.servers["e-bare"] = {"status": "unknown"}  # fields missing: tolerated
    peers.labels["a-online"] = {"env": "prod"}
    c = app.test_client()
    login(c, "vera")
    html = c.get("/console/").text
    order = re.findall(r'data-server="([^"]+)"', html)
    assert order[:2] == ["b-offline", "c-warning"] and order[-1] == "a-online"
    assert "connection refused" in html
    assert re.findall(r'data-server="([^"]+)"', c.get("/console/?status=pending").text) == [
        "d-pending"
    ]
    assert re.findall(r'data-server="([^"]+)"', c.get("/console/?label=env%3Dprod").text) == [
        "a-online"
    ]
    assert re.findall(r'data-server="([^"]+)"', c.get("/console/?q=refused").text) == ["b-offline"]
    assert re.findall(r'data-server="([^"]+)"', c.get("/console/?sort=name").text)[0] == "a-online"
    assert 'data-count="offline">1<' in html
    partial = c.get("/console/?partial=1")
    assert partial.headers["X-Console-Partial"] == "1" and "<html" not in partial.text


def test_empty_fleet_tells_a_new_user_what_to_do(app):
    c = app.test_client()
    login(c, "vera")
    assert "No servers yet" in c.get("/console/").text


def test_fleet_is_paged_critical_first_and_counts_cover_every_server(app, peers, monkeypatch):
    monkeypatch.setattr("alert_router.console.fleet.PAGE_ROWS", 2)
    for i in range(5):
        peers.set(f"s{i}", "offline" if i == 4 else "online")
    c = app.test_client()
    login(c, "vera")
    html = c.get("/console/").text
    assert re.findall(r'data-server="([^"]+)"', html) == ["s4", "s0"]
    assert "Servers 1–2 of 5" in html and 'data-count="online">4<' in html
    assert re.findall(r'data-server="([^"]+)"', c.get("/console/?page=3").text) == ["s3"]
    assert c.get("/console/?page=0").status_code == 400
    body = c.get("/console/api/fleet?page=2", headers=AUTH).json
    assert body["pages"] == 3 and [s["name"] for s in body["servers"]] == ["s1", "s2"]


def test_console_can_be_turned_off_and_its_config_is_strict(tmp_path):
    import pytest

    from alert_router.app import create_app
    from alert_router.errors import ConfigError
    from tests.console.session import console_config

    config = console_config(tmp_path, "http://127.0.0.1:9", enabled=False)
    app = create_app(config, start_background=False)
    assert app.test_client().get("/console/").status_code == 404
    app.extensions["stacksense"].close()
    for bad, key in (
        ({"rules_url": "ftp://x"}, "console.rules_url"),
        ({"colour": "red"}, "console.colour"),
        ({"refresh_interval": "0s"}, "console.refresh_interval"),
        ({"rules_url": "http://u:secret@h"}, "console.rules_url"),
    ):
        with pytest.raises(ConfigError) as err:
            create_app(
                console_config(tmp_path, "http://127.0.0.1:9", **bad), start_background=False
            )
        assert key in str(err.value) and "secret" not in str(err.value)


def test_an_unwritable_session_key_is_a_config_error_naming_the_key(tmp_path):
    import pytest

    from alert_router.app import create_app
    from alert_router.errors import ConfigError
    from tests.console.session import console_config

    config = console_config(
        tmp_path, "http://127.0.0.1:9", session_key_file="/proc/no-such-dir/console.key"
    )
    with pytest.raises(ConfigError) as err:
        create_app(config, start_background=False)
    assert str(err.value).startswith("console.session_key_file")


def test_the_default_session_key_lives_beside_the_store_not_in_the_working_directory(
    tmp_path, monkeypatch
):
    from alert_router.app import create_app
    from tests.console.session import console_config

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    config = console_config(tmp_path, "http://127.0.0.1:9")
    del config["console"]["session_key_file"]
    app = create_app(config, start_background=False)
    key = tmp_path / "router.db.console-key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and len(key.read_text().strip()) == 64
    assert list(workdir.iterdir()) == []
    app.extensions["stacksense"].close()


def test_incidents_list_is_live_and_filtered(app):
    fire(app, {"alertname": "DiskAlmostFull", "server": "web-1", "severity": "warning"})
    c = app.test_client()
    login(c, "vera")
    page = c.get("/console/incidents").text
    assert 'data-live="/console/incidents?partial=1"' in page
    partial = c.get("/console/incidents?partial=1")
    assert partial.headers["X-Console-Partial"] == "1" and "DiskAlmostFull on web-1" in partial.text
    assert "DiskAlmostFull" not in c.get("/console/incidents?state=closed&partial=1").text


def test_console_requests_are_counted_by_route_template(app):
    client = app.test_client()
    assert client.get("/console/login").status_code == 200
    assert client.get("/console/servers/web1").status_code in (302, 303)  # to the login
    assert client.get("/console/no-such-page").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert 'stacksense_http_requests_total{code="200",handler="/console/login"}' in text
    assert 'handler="/console/servers/<path:name>"' in text  # the template, not the server name
    assert 'handler="/console/servers/web1"' not in text
    assert 'stacksense_http_requests_total{code="404",handler="unmatched"}' in text
