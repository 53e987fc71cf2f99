"""Diagnostics on the console: an operator's "Diagnose" on the server page runs the exporter's
`POST /api/v1/diagnose/<server>` and shows the findings (summary, action, evidence) and each
section's status, escaped; viewers get no button and 403; a hung or failing exporter is a
clear message within the bound, never a 5xx."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.console.fake_exporter import FakeExporter, Request, fake_exporter
from tests.console.session import TOKEN, csrf_of, login
from tests.console.test_server_actions import SECRET, make_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def exporter() -> Iterator[FakeExporter]:
    with fake_exporter() as fake:
        fake.token = SECRET
        fake.add_server("db-1")
        yield fake


@pytest.fixture
def xapp(tmp_path, peers, exporter) -> Iterator[Flask]:
    peers.set("db-1", "online")
    application = make_app(tmp_path, peers, exporter.url)
    yield application
    application.extensions["stacksense"].close()


def text_of(page: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def diagnoses(exporter: FakeExporter) -> list[Request]:
    return [r for r in exporter.requests if r.path.startswith("/api/v1/diagnose/")]


def test_operator_diagnoses_and_sees_the_directory_and_the_process(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "otto")
    page = c.get("/console/servers/db-1").text
    assert "Diagnose db-1" in page
    assert 'action="/console/servers/db-1/diagnose"' in page

    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
    assert resp.status_code == 200, resp.text
    shown = text_of(resp.text)
    assert "/var is 96 % full: largest directories /var/log/app (3.1 GiB)" in shown
    assert "What to do: look at /var/log/app first (rotate or remove old files)" in shown
    assert "3.1 GiB /var/log/app" in shown
    assert "memory is 93 % used" in shown
    assert "What to do: look at java (pid 4242) first, it holds 55 %" in shown
    assert "java pid 4242 rss 7.1 GiB" in shown
    assert "disk ok" in shown and "ps_memory ok" in shown
    assert "the run took 1.2 s" in shown or "the run took 1.3 s" in shown
    assert "Incomplete" not in shown

    [req] = diagnoses(exporter)
    assert (req.method, req.path) == ("POST", "/api/v1/diagnose/db-1")
    assert req.authorization == f"Bearer {SECRET}"
    assert req.body == {"labels": {}}
    events = [
        (e.transition, e.actor, e.reason)
        for e in xapp.extensions["stacksense"].store.query_history(kind="server", server="db-1")
    ]
    assert events == [("diagnosed", "otto", "Diagnostics of db-1: 2 findings.")]


def test_an_alert_of_the_server_orders_the_findings(xapp, exporter):
    c = xapp.test_client()
    resp = c.post(
        "/api/v2/alerts",
        headers=AUTH,
        json=[
            {
                "labels": {"alertname": "DiskAlmostFull", "server": "db-1", "severity": "critical"},
                "annotations": {"summary": "disk"},
            }
        ],
    )
    assert resp.status_code == 200, resp.text
    xapp.extensions["stacksense"].dispatcher.step(time.time())
    csrf = login(c, "otto")
    page = c.get("/console/servers/db-1").text
    assert re.search(r'<option value="DiskAlmostFull"\s*>DiskAlmostFull</option>', page)
    resp = c.post(
        "/console/servers/db-1/diagnose", data={"csrf": csrf, "alertname": "DiskAlmostFull"}
    )
    assert "findings ordered for DiskAlmostFull" in text_of(resp.text)
    assert diagnoses(exporter)[0].body == {"labels": {"alertname": "DiskAlmostFull"}}


def test_report_values_are_escaped(xapp, exporter):
    exporter.diagnose_report = {
        "complete": False,
        "error": "<b>cut</b> by the deadline",
        "sections": {"<img src=x onerror=alert(2)>": "timed_out", "disk": "ok"},
        "findings": [
            {
                "text": "<script>alert(1)</script> is full",
                "action": "remove <iframe src=//evil>",
                "evidence": ["</pre><script>alert(3)</script>"],
            }
        ],
    }
    c = xapp.test_client()
    csrf = login(c, "otto")
    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
    assert resp.status_code == 200
    page = resp.text
    for raw in ("<script>alert", "<iframe", "<img src=x", "<b>cut</b>", "</pre><script>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is full" in page
    assert "&lt;iframe src=//evil&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    shown = text_of(page)
    assert "Incomplete report: <b>cut</b> by the deadline." in shown
    assert "timed_out" in shown
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_viewers_get_no_button_and_403(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "vera")
    page = c.get("/console/servers/db-1").text
    assert "Diagnose" not in page and "/diagnose" not in page
    assert c.post("/console/servers/db-1/diagnose", data={"csrf": csrf}).status_code == 403
    op = xapp.test_client()
    login(op, "otto")
    assert op.post("/console/servers/db-1/diagnose").status_code == 403  # no CSRF token
    assert diagnoses(exporter) == []


def test_a_hung_exporter_is_a_clear_message_within_the_bound(
    tmp_path, peers, exporter, monkeypatch
):
    monkeypatch.setattr("alert_router.console.exporter_api.DIAGNOSE_TIMEOUT", 0.5)
    peers.set("db-1", "online")
    exporter.diagnose_delay = 30.0
    app = make_app(tmp_path, peers, exporter.url, request_timeout="500ms")
    try:
        c = app.test_client()
        csrf = login(c, "otto")
        started = time.monotonic()
        resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
        took = time.monotonic() - started
        assert resp.status_code == 200
        assert took < 5, took
        assert (
            f"No diagnostics for db-1: the exporter at {exporter.url} did not answer within 0.5s"
        ) in text_of(resp.text)
        assert "Diagnose db-1" in resp.text  # the way to try again
        assert app.extensions["stacksense"].store.query_history(kind="server", server="db-1") == []
    finally:
        app.extensions["stacksense"].close()


@pytest.mark.parametrize(
    ("fail", "said"),
    [
        (500, "the exporter answered HTTP 500"),
        (502, "the exporter answered HTTP 502"),
    ],
)
def test_a_failing_exporter_is_a_clear_message(xapp, exporter, fail, said):
    exporter.diagnose_fail = fail
    c = xapp.test_client()
    csrf = login(c, "otto")
    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
    assert resp.status_code == 200
    assert f"No diagnostics for db-1: {said}" in text_of(resp.text)


def test_exporter_errors_are_its_own_words(xapp, exporter):
    c = xapp.test_client()
    csrf = login(c, "otto")
    exporter.servers.pop("db-1")
    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
    assert "No diagnostics for db-1: no server named 'db-1' in the inventory" in text_of(resp.text)
    exporter.add_server("db-1")
    exporter.token = "another"
    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf_of(resp.text)})
    assert "the exporter refused the console's token" in text_of(resp.text)
    # A 200 that is not a report (an exporter without the API behind a catch-all proxy).
    exporter.token = SECRET
    exporter.diagnose_report = {"hello": "world"}
    resp = c.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
    assert "the exporter answered an unexpected shape" in text_of(resp.text)
