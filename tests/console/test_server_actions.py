"""Server actions through the exporter's /api/v1/servers: suspend, resume and test probe
(operators), inventory add and remove (admins); the token from console.exporter_token_file;
every exporter failure a clear message, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from alert_router.app import create_app
from alert_router.console.users import Users
from tests.console.fake_exporter import FakeExporter, fake_exporter
from tests.console.fake_peers import FakePeers
from tests.console.session import PASSWORD, console_config, csrf_of, login

SECRET = "exporter-api-s3cret"


@pytest.fixture
def exporter() -> Iterator[FakeExporter]:
    with fake_exporter() as fake:
        fake.token = SECRET
        fake.add_server("db-1")
        yield fake


def make_app(tmp_path: Path, peers: FakePeers, exporter_url: str, **console: object) -> Flask:
    (tmp_path / "exporter.token").write_text(SECRET + "\n")
    console.setdefault("exporter_token_file", str(tmp_path / "exporter.token"))
    application = create_app(
        console_config(tmp_path, peers.url, exporter_url=exporter_url, **console),
        start_background=False,
    )
    users = Users(application.extensions["stacksense"].store)
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        users.add(name, role, PASSWORD)
    return application


@pytest.fixture
def xapp(tmp_path: Path, peers: FakePeers, exporter: FakeExporter) -> Iterator[Flask]:
    peers.set("db-1", "online")
    application = make_app(tmp_path, peers, exporter.url)
    yield application
    application.extensions["stacksense"].close()


def flashes(html: str) -> list[str]:
    import html as h
    import re

    return [
        h.unescape(re.sub(r"\s+", " ", m))
        for m in re.findall(
            r'<p class="flash [a-z]+" role="(?:status|alert)"[^>]*>(.*?)</p>', html, re.S
        )
    ]


def test_operator_suspends_resumes_and_tests_with_the_configured_token(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "otto")
    page = c.get("/console/servers/db-1").text
    assert "Suspend monitoring" in page and "Resume monitoring" not in page
    assert "monitoring active" in page

    resp = c.post("/console/servers/db-1/suspend", data={"csrf": csrf})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/servers/db-1")
    [write] = exporter.writes()
    assert (write.method, write.path) == ("POST", "/api/v1/servers/db-1/suspend")
    assert write.authorization == f"Bearer {SECRET}"
    page = c.get("/console/servers/db-1").text
    assert "Monitoring of db-1 suspended (suspended)." in flashes(page)
    assert "Resume monitoring" in page and "Suspend monitoring" not in page

    c.post("/console/servers/db-1/resume", data={"csrf": csrf})
    assert exporter.servers["db-1"]["suspended"] is False
    assert "Monitoring of db-1 resumed (resumed)." in flashes(c.get("/console/servers/db-1").text)

    c.post("/console/servers/db-1/test", data={"csrf": csrf})
    assert exporter.writes()[-1].path == "/api/v1/servers/db-1/test"
    [msg] = flashes(c.get("/console/servers/db-1").text)
    assert msg == "Test probe of db-1 succeeded in 0.42 s: cpu 12%; memory 40%"

    exporter.test_result = {
        "success": False,
        "duration_seconds": 3.0,
        "reason": "refused",
        "message": "connection refused by 10.0.0.5:22",
        "summary": [],
    }
    c.post("/console/servers/db-1/test", data={"csrf": csrf})
    page = c.get("/console/servers/db-1").text
    assert (
        '<p class="flash error" role="status">Test probe of db-1 failed in 3.00 s: refused '
        "(connection refused by 10.0.0.5:22)</p>"
    ) in page

    # Who did what is in the router's history (and on the server page's events).
    events = [
        (e.transition, e.actor)
        for e in xapp.extensions["stacksense"].store.query_history(kind="server", server="db-1")
    ]
    assert events == [
        ("suspended", "otto"),
        ("resumed", "otto"),
        ("tested", "otto"),
        ("tested", "otto"),
    ]


def test_viewers_see_no_actions_and_are_refused(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "vera")
    page = c.get("/console/servers/db-1").text
    assert "Suspend monitoring" not in page and "Run a test probe" not in page
    for action in ("suspend", "resume", "test"):
        assert c.post(f"/console/servers/db-1/{action}", data={"csrf": csrf}).status_code == 403
    # An operator without the form's CSRF token is refused too.
    op = xapp.test_client()
    login(op, "otto")
    assert op.post("/console/servers/db-1/suspend").status_code == 403
    assert exporter.writes() == []


@pytest.mark.parametrize(
    "case", ["down", "wrong-token", "no-token-file", "unreadable", "crash", "unknown-server"]
)
def test_exporter_failures_are_clear_messages_never_500(tmp_path, peers, exporter, caplog, case):
    from tests.peers.util import free_port

    peers.set("db-1", "online")
    peers.set("gone", "online")
    url, console, server = exporter.url, {}, "db-1"
    if case == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif case == "wrong-token":
        exporter.token = "another-token"
    elif case == "no-token-file":
        console["exporter_token_file"] = ""
    elif case == "unreadable":
        console["exporter_token_file"] = str(tmp_path / "missing.token")
    elif case == "crash":
        exporter.fail_with = 500
    else:
        server = "gone"
    app = make_app(tmp_path, peers, url, **console)
    try:
        caplog.set_level(logging.DEBUG)
        c = app.test_client()
        csrf = login(c, "otto")
        for action in ("suspend", "test"):
            resp = c.post(f"/console/servers/{server}/{action}", data={"csrf": csrf})
            assert resp.status_code == 302, resp.text
            page = c.get(f"/console/servers/{server}")
            assert page.status_code == 200
            [msg] = flashes(page.text)
            assert 'class="flash error"' in page.text
            assert SECRET not in page.text
            expected = {
                "down": f"cannot reach the exporter at {url}",
                "wrong-token": "the exporter refused the console's token: "
                "console.exporter_token_file must hold",
                "no-token-file": "the exporter wants a token: set console.exporter_token_file",
                "unreadable": "cannot read console.exporter_token_file (No such file",
                "crash": "the exporter answered HTTP 500",
                "unknown-server": "no server named 'gone' in the inventory",
            }[case]
            assert expected in msg, msg
        assert SECRET not in caplog.text
        if case == "unknown-server":
            assert "The exporter's inventory has no server named gone" in page.text
    finally:
        app.extensions["stacksense"].close()


def test_admin_adds_a_server_and_sees_the_exporters_validation(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "ada")
    page = c.get("/console/inventory")
    assert page.status_code == 200 and ">db-1</a>" in page.text and "Inventory</a>" in page.text

    form = {
        "csrf": csrf,
        "name": "web-9",
        "mode": "ssh",
        "host": "10.0.0.9",
        "port": "http",
        "user": "monitor",
        "labels": "env=prod, rack=r1",
    }
    bad = c.post("/console/inventory", data=form)
    assert bad.status_code == 400
    assert "Not added: port: expected 1-65535, got &#39;http&#39;" in bad.text
    assert 'value="10.0.0.9"' in bad.text and 'value="env=prod, rack=r1"' in bad.text  # kept

    malformed = c.post("/console/inventory", data={**form, "labels": "env"})
    assert (
        malformed.status_code == 400 and "labels: &#39;env&#39; is not name=value" in malformed.text
    )
    assert len(exporter.writes()) == 1  # the console's own check sent nothing

    ok = c.post("/console/inventory", data={**form, "port": "2222"})
    assert ok.status_code == 302
    sent = exporter.writes()[-1]
    assert sent.authorization == f"Bearer {SECRET}"
    assert sent.body == {
        "name": "web-9",
        "host": "10.0.0.9",
        "port": "2222",
        "user": "monitor",
        "labels": {"env": "prod", "rack": "r1"},
    }
    page = c.get("/console/inventory").text
    assert "Server web-9 added." in flashes(page) and ">web-9</a>" in page
    assert "<code>env=prod</code>" in page


def test_admin_removes_a_server_after_confirming(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "ada")
    confirm = c.get("/console/inventory/db-1/remove")
    assert confirm.status_code == 200 and "Remove db-1?" in confirm.text
    assert csrf_of(confirm.text) == csrf
    # A post without the confirmation field is asked again, nothing removed.
    assert c.post("/console/inventory/db-1/remove", data={"csrf": csrf}).status_code == 400
    assert exporter.writes() == []
    resp = c.post("/console/inventory/db-1/remove", data={"csrf": csrf, "confirm": "yes"})
    assert resp.status_code == 302
    [write] = exporter.writes()
    assert (write.method, write.path, write.query) == ("DELETE", "/api/v1/servers/db-1", "")
    assert "Server db-1 removed from the inventory." in flashes(c.get("/console/inventory").text)
    assert "db-1" not in exporter.servers
    # Removing one that is gone is a message, not an error page.
    c.post(
        "/console/inventory/db-1/remove", data={"csrf": csrf, "confirm": "yes", "remove_key": "1"}
    )
    assert exporter.writes()[-1].query == "remove_key=1"
    [msg] = flashes(c.get("/console/inventory").text)
    assert msg.startswith("Could not remove db-1: no server named")


def test_inventory_is_admin_only(xapp, exporter):
    for name in ("vera", "otto"):
        c = xapp.test_client()
        csrf = login(c, name)
        assert "Inventory</a>" not in c.get("/console/").text
        assert c.get("/console/inventory").status_code == 403
        assert (
            c.post("/console/inventory", data={"csrf": csrf, "name": "x", "host": "h"}).status_code
            == 403
        )
        assert c.get("/console/inventory/db-1/remove").status_code == 403
        assert (
            c.post(
                "/console/inventory/db-1/remove", data={"csrf": csrf, "confirm": "yes"}
            ).status_code
            == 403
        )
    admin = xapp.test_client()
    login(admin, "ada")
    assert admin.post("/console/inventory", data={"name": "x", "host": "h"}).status_code == 403
    assert exporter.writes() == []


def test_inventory_page_says_when_the_exporter_is_down(tmp_path, peers):
    from tests.peers.util import free_port

    app = make_app(tmp_path, peers, f"http://127.0.0.1:{free_port()}")
    try:
        c = app.test_client()
        csrf = login(c, "ada")
        page = c.get("/console/inventory")
        assert page.status_code == 200 and "Cannot list the servers: cannot reach" in page.text
        resp = c.post("/console/inventory", data={"csrf": csrf, "name": "x", "host": "h"})
        assert resp.status_code == 502 and "Not added: cannot reach the exporter" in resp.text
    finally:
        app.extensions["stacksense"].close()


def test_exporter_token_file_setting(tmp_path):
    from alert_router.console.settings import parse_console
    from alert_router.errors import ConfigError

    assert parse_console({}, tmp_path).exporter_token_file == ""
    cfg = parse_console({"exporter_token_file": "api.token"}, tmp_path)
    assert cfg.exporter_token_file == str(tmp_path / "api.token")
    with pytest.raises(ConfigError):
        parse_console({"exporter_token_file": 5}, tmp_path)
