"""One ingest path: every form of alert POST is answered by api.fastpath, under the one auth
rule (alert_router.auth.refusal); Flask has no ingest view left."""

from __future__ import annotations

import time
from pathlib import Path

from alert_router.api.fastpath import ENDPOINTS
from alert_router.app import create_app
from tests.alert_router.harness import AUTH, base_config

BODIES = {
    "/api/v2/alerts": [{"labels": {"alertname": "V2"}}],
    "/api/v1/webhook/alertmanager": {
        "version": "4",
        "alerts": [{"status": "firing", "labels": {"alertname": "Am"}}],
    },
    "/api/v1/webhook/grafana": {"alerts": [{"status": "firing", "labels": {"alertname": "Gf"}}]},
    "/api/v1/alerts": {"alerts": [{"name": "Generic"}]},
}


def test_every_ingest_form_goes_through_the_one_path(tmp_path: Path) -> None:
    app = create_app(base_config(tmp_path), start_background=False)
    try:
        assert set(BODIES) == set(ENDPOINTS)
        posts = [r.rule for r in app.url_map.iter_rules() if "POST" in (r.methods or ())]
        assert not set(posts) & set(ENDPOINTS), posts  # no Flask view would ever run
        client = app.test_client()
        for path, body in BODIES.items():
            refused = client.post(path, json=body)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"] == "Bearer"
            assert client.post(path, json=body, headers=AUTH).status_code == 200, path
            if path != "/api/v2/alerts":  # GET there is Alertmanager's list
                wrong = client.get(path, headers=AUTH)
                assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST", path
                assert wrong.json["code"] == 405
        state = app.extensions["stacksense"]
        state.dispatcher.step(time.time())
        names = {a["labels"]["alertname"] for a in client.get("/api/v2/alerts").json}
        assert names == {"V2", "Am", "Gf", "Generic"}
        sample = state.metrics.registry.get_sample_value
        for path in ENDPOINTS:
            assert (
                sample(
                    "stacksense_http_requests_total",
                    {"handler": path, "code": "200"},
                )
                # the GET listing above counts under the same route template
                == (2.0 if path == "/api/v2/alerts" else 1.0)
            ), path
    finally:
        app.extensions["stacksense"].close()


def test_open_writes_refuse_forms_on_every_ingest_path(tmp_path: Path) -> None:
    app = create_app(
        base_config(tmp_path, auth={"allow_unauthenticated_writes": True}), start_background=False
    )
    try:
        client = app.test_client()
        for path in ENDPOINTS:
            form = client.post(path, data="a=b", content_type="application/x-www-form-urlencoded")
            assert form.status_code == 415, path
            assert client.post(path, json=BODIES[path]).status_code == 200, path
    finally:
        app.extensions["stacksense"].close()
