"""The HTTP API: validation (4xx naming what is wrong), auth on writes, size limit, forms."""

from __future__ import annotations

import json
import time

import pytest

from tests.alert_router.harness import AUTH

NOW_ISO = "2030-01-01T00:00:00Z"


def error_text(resp) -> str:
    """The message of a JSON error: a bare string on /api/v2 (Alertmanager), else ["error"]."""
    body = resp.json
    return body if isinstance(body, str) else body["error"]


WRITES = [
    ("POST", "/api/v2/alerts", [{"labels": {"alertname": "A"}}]),
    ("POST", "/api/v1/webhook/alertmanager", {"version": "4", "alerts": []}),
    ("POST", "/api/v1/webhook/grafana", {"alerts": []}),
    ("POST", "/api/v1/alerts", {"name": "A"}),
    ("POST", "/api/v2/silences", {}),
    ("DELETE", "/api/v2/silence/x", None),
    ("POST", "/api/v1/incidents/1/acknowledge", {"by": "me"}),
    ("POST", "/api/v1/incidents/1/close", {"by": "me"}),
    ("POST", "/-/reload", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer "])
def test_every_write_needs_a_valid_token(client, method, path, body, header):
    headers = {"Authorization": header} if header else {}
    resp = client.open(path, method=method, json=body, headers=headers)
    assert resp.status_code == 401
    assert "Bearer" in error_text(resp)


def test_reads_are_open_by_default_and_writes_work_with_the_token(client):
    assert client.get("/api/v2/alerts").status_code == 200
    resp = client.post("/api/v2/alerts", json=[{"labels": {"alertname": "A"}}], headers=AUTH)
    assert resp.status_code == 200


def test_protect_reads(harness_factory, tmp_path):
    h = harness_factory(auth={"tokens_file": str(tmp_path / "tokens"), "protect_reads": True})
    assert h.client.get("/api/v2/alerts").status_code == 401
    assert h.client.get("/api/v2/alerts", headers=AUTH).status_code == 200
    assert h.client.get("/-/healthy").status_code == 200


BAD_ALERTS = [
    ("[", "invalid JSON"),
    ('{"labels": {}}', "alerts: must be a list"),
    ("[42]", "alerts[0]: must be an object"),
    ('[{"labels": {}}]', "alerts[0].labels: at least one label"),
    ('[{"annotations": {"a": "b"}}]', "alerts[0].labels: at least one label"),
    ('[{"labels": {"1bad": "x"}}]', "alerts[0].labels.1bad: invalid label name"),
    ('[{"labels": {"a": 1}}]', "alerts[0].labels.a: must be a string"),
    ('[{"labels": {"a": "b"}, "annotations": {"s": []}}]', "alerts[0].annotations.s"),
    ('[{"labels": {"a": "b"}, "startsAt": "yesterday"}]', "alerts[0].startsAt: invalid"),
    ('[{"labels": {"a": "b"}, "startsAt": "2030-01-01T00:00:00"}]', "time zone"),
    (
        '[{"labels": {"a": "b"}, "startsAt": "2030-01-02T00:00:00Z", "endsAt": "' + NOW_ISO + '"}]',
        "alerts[0].endsAt: is before startsAt",
    ),
    ('[{"labels": {"a": "b"}, "generatorURL": 5}]', "alerts[0].generatorURL"),
    ("", "body: empty"),
]


@pytest.mark.parametrize(("body", "message"), BAD_ALERTS)
def test_invalid_alerts_get_400_naming_the_problem(client, body, message):
    resp = client.post(
        "/api/v2/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert message in error_text(resp)


def test_valid_alerts_of_a_partly_invalid_request_are_kept(harness):
    resp = harness.post(
        [
            {"labels": {"alertname": "Good"}},
            {"labels": {"bad-name": "x"}},
            {"labels": {"alertname": "AlsoGood"}},
        ]
    )
    assert resp.status_code == 400
    assert "1 invalid alert(s) rejected, 2 valid alert(s) accepted" in error_text(resp)
    assert "alerts[1].labels.bad-name" in error_text(resp)
    harness.state.dispatcher.step(time.time())
    names = {a["labels"]["alertname"] for a in harness.client.get("/api/v2/alerts").json}
    assert names == {"Good", "AlsoGood"}


def test_request_size_limit(harness_factory):
    h = harness_factory(web={"max_request_bytes": 2048})
    big = [{"labels": {"alertname": "A", "x": "y" * 4000}}]
    resp = h.client.post("/api/v2/alerts", json=big, headers=AUTH)
    assert resp.status_code == 413
    assert "larger than" in error_text(resp)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v1/webhook/alertmanager", {"version": "3", "alerts": []}, 'version: must be "4"'),
        ("/api/v1/webhook/alertmanager", [], "body: must be a JSON object"),
        (
            "/api/v1/webhook/alertmanager",
            {"version": "4", "alerts": [{"labels": {"a": "b"}, "status": "gone"}]},
            "alerts[0].status: must be firing or resolved",
        ),
        ("/api/v1/webhook/grafana", {"title": "x"}, "alerts: required"),
        ("/api/v1/alerts", {"server": "s1"}, "alert.name: required"),
        ("/api/v1/alerts", {"name": "A", "colour": "red"}, "alert.colour: unknown field"),
        ("/api/v1/alerts", {"alerts": [{"name": "A", "status": "meh"}]}, "alerts[0].status"),
        ("/api/v1/alerts", {"alerts": {}, "x": 1}, "x: unknown field"),
    ],
)
def test_other_forms_validate_too(client, path, body, message):
    resp = client.post(path, json=body, headers=AUTH)
    assert resp.status_code == 400
    assert message in error_text(resp)


def _firing_alerts(h):
    h.state.dispatcher.step(time.time())
    return {a["labels"]["alertname"]: a for a in h.client.get("/api/v2/alerts").json}


def test_alertmanager_webhook_form(harness):
    payload = {
        "version": "4",
        "receiver": "r",
        "status": "firing",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Up", "server": "s1"},
                "annotations": {"summary": "s"},
                "startsAt": "2033-05-18T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://p/g",
                "fingerprint": "x",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "Gone"},
                "startsAt": "2033-05-18T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
            },
        ],
    }
    resp = harness.client.post("/api/v1/webhook/alertmanager", json=payload, headers=AUTH)
    assert resp.status_code == 200
    alerts = _firing_alerts(harness)
    assert set(alerts) == {"Up"}  # the resolved one is stored as resolved
    assert alerts["Up"]["annotations"] == {"summary": "s"}
    assert alerts["Up"]["generatorURL"] == "http://p/g"


def test_grafana_form_keeps_links_as_annotations(harness):
    payload = {
        "receiver": "x",
        "status": "firing",
        "orgId": 1,
        "title": "t",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "G", "grafana_folder": "f"},
                "annotations": {},
                "startsAt": "2033-05-18T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "dashboardURL": "http://g/d",
                "values": {"A": 1},
            }
        ],
    }
    resp = harness.client.post("/api/v1/webhook/grafana", json=payload, headers=AUTH)
    assert resp.status_code == 200
    assert _firing_alerts(harness)["G"]["annotations"] == {"dashboardURL": "http://g/d"}


def test_grafana_documented_payload_with_an_invalid_alert_keeps_links_aligned(harness):
    # The shape of Grafana's documented example (offset times, numeric values).
    payload = {
        "receiver": "My Super Webhook",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {"status": "firing", "labels": {"bad-name": "x"}},
            {
                "status": "firing",
                "labels": {"alertname": "High memory usage", "team": "blue"},
                "annotations": {"summary": "zone us-1"},
                "startsAt": "2021-10-12T09:51:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "c6eadffa33fcdf37",
                "silenceURL": "https://g/silence",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.2, "C": 1},
            },
        ],
        "groupLabels": {},
        "commonLabels": {"team": "blue"},
        "commonAnnotations": {},
        "externalURL": "https://g/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": "[FIRING:1]",
        "state": "alerting",
        "message": "x",
    }
    resp = harness.client.post("/api/v1/webhook/grafana", json=payload, headers=AUTH)
    assert resp.status_code == 400 and "alerts[0].labels.bad-name" in error_text(resp)
    alert = _firing_alerts(harness)["High memory usage"]
    assert alert["annotations"] == {"summary": "zone us-1", "silenceURL": "https://g/silence"}
    assert alert["startsAt"] == "2021-10-12T07:51:03.157Z"


def test_generic_form(harness):
    body = {
        "alerts": [
            {
                "name": "Disk",
                "server": "web-1",
                "severity": "warning",
                "summary": "disk 95%",
                "labels": {"mount": "/"},
            }
        ]
    }
    assert harness.client.post("/api/v1/alerts", json=body, headers=AUTH).status_code == 200
    alert = _firing_alerts(harness)["Disk"]
    assert alert["labels"] == {
        "alertname": "Disk",
        "server": "web-1",
        "severity": "warning",
        "mount": "/",
    }
    assert alert["annotations"] == {"summary": "disk 95%"}


def test_metrics_count_received_and_invalid(harness):
    harness.post([{"labels": {"alertname": "A"}}, {"labels": {"alertname": "B"}}])
    harness.post([{"labels": {}}])
    text = harness.client.get("/metrics").data.decode()
    assert 'stacksense_router_alerts_received_total{source="api"} 2.0' in text
    assert 'stacksense_router_alerts_invalid_total{source="api"} 1.0' in text
    assert "stacksense_http_request_duration_seconds_bucket" in text
    assert "stacksense_router_outbox_depth 0.0" in text
    assert "stacksense_router_inbox_requests 1.0" in text  # not yet dispatched


def test_health_ready_openapi(client):
    assert client.get("/-/healthy").status_code == 200
    assert client.get("/-/ready").status_code == 200
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.") and "/api/v2/alerts" in doc["paths"]


def test_page_escapes_html(harness):
    harness.post(
        [
            {
                "labels": {"alertname": "<script>alert(1)</script>", "server": "s&1"},
                "annotations": {"summary": "<b>bold</b>"},
            }
        ]
    )
    harness.state.dispatcher.step(2e9 - 1e9)
    html = harness.client.get("/").data.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "s&amp;1" in html


def test_status_redacts_secrets(harness_factory, tmp_path):
    config_file = tmp_path / "r.yml"
    import yaml

    from tests.alert_router.harness import base_config

    cfg = base_config(tmp_path)
    cfg["receivers"][0]["webhook_configs"][0]["url"] = "http://127.0.0.1:9/hook?token=SeCrEt1"
    config_file.write_text(yaml.safe_dump(cfg))
    from alert_router.app import create_app

    app = create_app(config_file, start_background=False)
    try:
        body = json.dumps(app.test_client().get("/api/v2/status").json)
        assert "SeCrEt1" not in body and "<secret>" in body
    finally:
        app.extensions["stacksense"].close()


def _silence(**overrides):
    import time as _time

    from alert_router.timeutil import format_time

    body = {
        "matchers": [{"name": "server", "value": "s1", "isRegex": False}],
        "startsAt": format_time(_time.time() - 10),
        "endsAt": format_time(_time.time() + 3600),
        "createdBy": "alice",
        "comment": "maintenance",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"matchers": []}, "matchers: required"),
        (
            {"matchers": [{"name": "server", "value": ".*", "isRegex": True}]},
            "at least one matcher must not match the empty string",
        ),
        ({"matchers": [{"name": "1x", "value": "a", "isRegex": False}]}, "invalid label name"),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, "invalid regex"),
        ({"endsAt": "2001-01-01T00:00:00Z"}, "endsAt: "),
        ({"createdBy": ""}, "createdBy: required"),
        ({"comment": None}, "comment: required"),
        ({"startsAt": "soon"}, "startsAt: invalid"),
    ],
)
def test_invalid_silences(client, change, message):
    resp = client.post("/api/v2/silences", json=_silence(**change), headers=AUTH)
    assert resp.status_code == 400
    assert message in error_text(resp)


def test_silence_update_in_place_or_replaced_as_alertmanager_does(client):
    sid = client.post("/api/v2/silences", json=_silence(), headers=AUTH).json["silenceID"]
    created = client.get(f"/api/v2/silence/{sid}").json
    # Same matchers and start, longer end: updated in place.
    longer = _silence(id=sid, startsAt=created["startsAt"], comment="longer")
    assert client.post("/api/v2/silences", json=longer, headers=AUTH).json["silenceID"] == sid
    assert client.get(f"/api/v2/silence/{sid}").json["comment"] == "longer"
    # Different matchers: the old one expires, a new one takes over.
    other = _silence(id=sid, matchers=[{"name": "server", "value": "s2", "isRegex": False}])
    new_id = client.post("/api/v2/silences", json=other, headers=AUTH).json["silenceID"]
    assert new_id != sid
    assert client.get(f"/api/v2/silence/{sid}").json["status"]["state"] == "expired"
    assert client.get(f"/api/v2/silence/{new_id}").json["status"]["state"] == "active"
    # Alertmanager 0.25: re-posting an expired id creates a new silence, the old one stays.
    again = client.post("/api/v2/silences", json=_silence(id=sid), headers=AUTH)
    assert again.status_code == 200 and again.json["silenceID"] not in (sid, new_id)
    assert client.get(f"/api/v2/silence/{sid}").json["status"]["state"] == "expired"
    assert (
        client.post("/api/v2/silences", json=_silence(id="nope"), headers=AUTH).status_code == 404
    )
    assert client.delete(f"/api/v2/silence/{new_id}", headers=AUTH).status_code == 200
    # Expiring an expired silence is a no-op 200, as in Alertmanager 0.25.
    assert client.delete(f"/api/v2/silence/{new_id}", headers=AUTH).status_code == 200
    transitions = [e["transition"] for e in client.get("/api/v1/history?kind=silence").json]
    assert transitions == ["created", "updated", "expired", "created", "created", "expired"]


@pytest.mark.parametrize("path", ["/api/v2/alerts", "/api/v2/silences"])
def test_a_bad_filter_is_a_400_naming_it(client, path):
    resp = client.get(path, query_string={"filter": "not a matcher"})
    assert resp.status_code == 400
    assert error_text(resp).startswith("filter:")


def test_wrong_method_is_a_json_405_naming_the_allowed_methods(client):
    from tests.alert_router.harness import AUTH

    for method, path in (("DELETE", "/api/v2/status"), ("POST", "/-/healthy")):
        resp = client.open(path, method=method, headers=AUTH)
        assert resp.status_code == 405, path
        assert resp.json["code"] == 405
        assert "GET" in resp.headers["Allow"].split(", "), path
