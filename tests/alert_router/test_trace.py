"""One trace id per alert occurrence, from ingest to every delivery attempt (and a retry)."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from alert_router.cli import main as router_cli
from alert_router.notify.base import NotifyError
from alert_router.timeutil import format_time, parse_time
from alert_router.trace import derive
from rules.alerts import AlertBook, AlertRecord
from tests.alert_router.harness import AUTH
from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

T0 = parse_time(format_time(time.time() + 1000.0))  # to the millisecond, as on the wire


def rule_alert(start: float) -> list[dict]:
    """What the rule engine posts (its own AlertBook), so the trace starts where it does."""
    book = AlertBook()
    book.sync(
        [
            AlertRecord(
                {"alertname": "DiskFull", "server": "s1", "severity": "critical"},
                {"summary": "/ is 97% full"},
                start,
            )
        ],
        start,
    )
    return book.payload(start, 600)


def stages(client, trace_id: str) -> list[tuple[str, str]]:
    body = client.get(f"/api/v1/trace/{trace_id}").json
    return [(s["stage"], s["outcome"]) for s in body["stages"]]


def test_trace_id_annotation_is_validated_at_ingest(harness):
    bad = {"labels": {"alertname": "A"}, "annotations": {"trace_id": "no spaces; please"}}
    resp = harness.post([bad])
    assert resp.status_code == 400
    assert "alerts[0].annotations.trace_id" in resp.get_data(as_text=True)
    too_long = {"labels": {"alertname": "A"}, "annotations": {"trace_id": "x" * 65}}
    assert harness.post([too_long]).status_code == 400
    generic = harness.client.post(
        "/api/v1/alerts", headers=AUTH, json={"name": "A", "annotations": {"trace_id": "../etc"}}
    )
    assert generic.status_code == 400 and "annotations.trace_id" in generic.json["error"]
    assert (
        harness.post(
            [{"labels": {"alertname": "A"}, "annotations": {"trace_id": "ok-1.2_3"}}]
        ).status_code
        == 200
    )


def test_trace_api_answers_400_for_malformed_and_404_for_unknown(harness):
    assert harness.client.get("/api/v1/trace/bad%20id").status_code == 400
    assert harness.client.get("/api/v1/trace/a/b").status_code == 400
    assert harness.client.get(f"/api/v1/trace/{'x' * 65}").status_code == 400
    resp = harness.client.get("/api/v1/trace/0123456789abcdef")
    assert resp.status_code == 404 and "not found" in resp.json["error"]
    assert harness.client.post("/api/v1/trace/0123456789abcdef/retry").status_code == 401
    assert (
        harness.client.post("/api/v1/trace/0123456789abcdef/retry", headers=AUTH).status_code == 404
    )


def test_rule_alert_traced_to_failed_delivery_then_retried(harness_factory, caplog):
    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    stub = h.stubs["default"]
    stub.fail_with = NotifyError("410 gone", retryable=False, reason="http_4xx")
    payload = rule_alert(T0)
    trace_id = payload[0]["annotations"]["trace_id"]
    assert h.post(payload).status_code == 200
    with caplog.at_level(logging.INFO, logger="alert_router.outbox"):
        h.step(T0)
    assert stages(h.client, trace_id) == [
        ("received", "firing"),
        ("grouped", "ok"),
        ("queued", "firing"),
        ("delivery", "failed"),
    ]
    failed = h.client.get(f"/api/v1/trace/{trace_id}").json["stages"][-1]
    assert failed["details"]["receiver"] == "default" and "410 gone" in failed["details"]["error"]
    assert f"trace={trace_id}" in caplog.text  # the given-up log line names the trace

    stub.fail_with = None
    retry = h.client.post(f"/api/v1/trace/{trace_id}/retry", headers=AUTH)
    assert retry.status_code == 200 and retry.json["requeued"] == [failed["details"]["outbox_id"]]
    h.step(T0 + 1)
    assert [a.labels["alertname"] for n in stub.sent for a in n.alerts] == ["DiskFull"]
    # (The retry is stamped with the real clock, behind this test's: only the last is sure.)
    assert stages(h.client, trace_id)[-1] == ("delivery", "sent")
    assert ("retry", "requeued") in stages(h.client, trace_id)
    # Nothing failed any more: a second retry queues nothing.
    assert h.client.post(f"/api/v1/trace/{trace_id}/retry", headers=AUTH).json["requeued"] == []


def test_retry_leaves_a_delivery_the_group_has_superseded(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_wait": "0s", "group_by": ["alertname"]}
    )
    stub = h.stubs["default"]
    stub.fail_with = NotifyError("410 gone", retryable=False, reason="http_4xx")
    first = rule_alert(T0)
    h.post(first)
    h.step(T0)
    stub.fail_with = None
    second = [
        {
            **first[0],
            "labels": {**first[0]["labels"], "server": "s2"},
            "annotations": {"trace_id": "second-one"},
        }
    ]
    h.post(second)
    h.step(T0 + 301)  # the group's next notification (both alerts) is sent
    assert [len(n.alerts) for n in stub.sent] == [2]
    trace_id = first[0]["annotations"]["trace_id"]
    resp = h.client.post(f"/api/v1/trace/{trace_id}/retry", headers=AUTH)
    assert resp.status_code == 200 and resp.json["requeued"] == []
    assert ("retry", "nothing") in stages(h.client, trace_id)


def test_derived_id_is_kept_while_firing_and_new_for_a_new_occurrence(harness_factory):
    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    labels = {"alertname": "Load", "server": "s2"}
    h.post([{"labels": labels, "startsAt": format_time(T0), "endsAt": format_time(T0 + 60)}])
    h.step(T0)
    first = derive(labels, T0)
    # Re-sent while firing (as Prometheus does, with its start): the id stays.
    h.post([{"labels": labels, "startsAt": format_time(T0), "endsAt": format_time(T0 + 120)}])
    h.step(T0 + 30)
    h.step(T0 + 200)  # resolved
    h.step(T0 + 350)  # ...and notified as such at the group's next flush
    assert stages(h.client, first)[0] == ("received", "firing")
    assert stages(h.client, first)[-3:] == [
        ("resolved", "ended"),
        ("queued", "resolved"),
        ("delivery", "sent"),
    ]
    assert stages(h.client, first).count(("received", "firing")) == 1
    h.post([{"labels": labels, "startsAt": format_time(T0 + 500), "endsAt": format_time(T0 + 600)}])
    h.step(T0 + 500)
    second = derive(labels, T0 + 500)
    assert second != first
    assert stages(h.client, second)[:2] == [("received", "firing"), ("grouped", "ok")]
    assert ("delivery", "sent") in stages(h.client, second)


def test_diagnostics_stage_says_when_they_were_left_out(harness_factory):
    h = harness_factory(
        diagnostics={"exporter_url": "http://127.0.0.1:9", "timeout": "2s"},
        route={"receiver": "default", "group_wait": "0s", "diagnostics": True},
    )
    assert h.post(rule_alert(T0)).status_code == 200
    h.step(T0)
    trace_id = rule_alert(T0)[0]["annotations"]["trace_id"]
    assert stages(h.client, trace_id) == [
        ("received", "firing"),
        ("grouped", "ok"),
        ("diagnostics", "without"),
        ("queued", "firing"),
        ("delivery", "sent"),
    ]
    [diag] = [
        s
        for s in h.client.get(f"/api/v1/trace/{trace_id}").json["stages"]
        if s["stage"] == "diagnostics"
    ]
    assert "exporter not reachable" in diag["details"]["note"]


@pytest.mark.slow
def test_trace_from_rule_alert_to_webhook_under_gunicorn(tmp_path, capsys):
    with webhook_receiver() as hook:
        hook.status = 400  # a receiver refusing it: the delivery is given up
        config = {
            "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "0s"},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config) as proc:
            payload = rule_alert(time.time())
            trace_id = payload[0]["annotations"]["trace_id"]
            url = f"{proc.url}/api/v1/trace/{trace_id}"
            assert (
                requests.post(
                    f"{proc.url}/api/v2/alerts", json=payload, headers=proc.auth, timeout=10
                ).status_code
                == 200
            )

            def outcomes() -> list[tuple[str, str]]:
                resp = requests.get(url, timeout=5)
                return (
                    []
                    if resp.status_code == 404
                    else [(s["stage"], s["outcome"]) for s in resp.json()["stages"]]
                )

            wait_for(
                lambda: ("delivery", "failed") in outcomes(),
                timeout=30,
                what="the failed delivery in the trace",
            )
            assert outcomes()[:3] == [
                ("received", "firing"),
                ("grouped", "ok"),
                ("queued", "firing"),
            ]
            assert f"trace={trace_id}" in proc.log()

            hook.status = 200
            assert requests.post(f"{url}/retry", timeout=5).status_code == 401
            resp = requests.post(f"{url}/retry", headers=proc.auth, timeout=5)
            assert resp.status_code == 200 and len(resp.json()["requeued"]) == 1
            wait_for(
                lambda: ("delivery", "sent") in outcomes(),
                timeout=30,
                what="the retried delivery in the trace",
            )
            delivered = [a for a in hook.alerts() if a["labels"]["alertname"] == "DiskFull"]
            assert delivered[-1]["annotations"]["trace_id"] == trace_id
            times = [s["ts"] for s in requests.get(url, timeout=5).json()["stages"]]
            assert times == sorted(times)

        # The same answer in a terminal, read from the router's store.
        assert router_cli(["--config", str(proc.config_path), "trace", trace_id]) == 0
        out = capsys.readouterr().out
        assert f"trace {trace_id}" in out and "delivery" in out and "sent" in out
        assert router_cli(["--config", str(proc.config_path), "trace", "nope!"]) == 2


def test_derived_ids_sort_by_start_so_new_trace_rows_append_to_the_index() -> None:
    labels = [{"alertname": "A", "server": f"s{i}"} for i in range(50)]
    starts = [1.7e9 + i * 0.7 for i in range(50)]
    ids = [derive(lab, start) for lab, start in zip(labels, starts, strict=True)]
    later_seconds = [i for i in range(1, 50) if int(starts[i]) > int(starts[i - 1])]
    assert later_seconds
    for i in later_seconds:
        assert ids[i] > max(ids[:i])
