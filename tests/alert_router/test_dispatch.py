"""The pipeline with a given clock: group timers, mute (silences, inhibition), dedupe, outbox."""

from __future__ import annotations

import time

import pytest

from alert_router.notify.base import NotifyError
from alert_router.timeutil import format_time

T0 = time.time() + 1000.0  # the test clock; alerts carry explicit times relative to it


def alert(
    name: str, server: str = "s1", *, start: float = T0, end: float | None = None, **labels: str
) -> dict:
    body = {
        "labels": {"alertname": name, "server": server, **labels},
        "startsAt": format_time(start),
    }
    if end is not None:
        body["endsAt"] = format_time(end)
    return body


def sent_alerts(stub) -> list[list[tuple[str, str]]]:
    return [[(a.labels["alertname"], a.status) for a in n.alerts] for n in stub.sent]


def test_group_wait_interval_and_repeat(harness):
    stub = harness.stubs["default"]
    harness.post([alert("A", end=T0 + 10_000)])
    harness.step(T0)
    assert stub.sent == []  # group_wait (30 s) not over yet
    harness.step(T0 + 29)
    assert stub.sent == []
    harness.step(T0 + 30)
    assert sent_alerts(stub) == [[("A", "firing")]]
    # Same alert again: nothing new, so the next group_interval flush is deduplicated.
    harness.post([alert("A", end=T0 + 20_000)])
    harness.step(T0 + 30 + 300)
    assert len(stub.sent) == 1
    # A second alert of the same group waits for group_interval, not group_wait.
    harness.post([alert("A", server="s1", extra="x", end=T0 + 20_000)])
    harness.step(T0 + 400)
    assert len(stub.sent) == 1  # same group key? no: extra is not in group_by -> same group
    harness.step(T0 + 630)
    assert [len(n.alerts) for n in stub.sent] == [1, 2]
    # repeat_interval (4 h) re-sends an unchanged group.
    harness.step(T0 + 630 + 3 * 3600)
    assert len(stub.sent) == 2
    harness.step(T0 + 630 + 4 * 3600 + 300)
    assert len(stub.sent) == 3
    text = harness.client.get("/metrics").data.decode()
    assert 'stacksense_router_notifications_deduped_total{receiver="default"}' in text


def test_resolved_is_sent_once_then_group_is_gone(harness):
    stub = harness.stubs["default"]
    harness.post([alert("A", end=T0 + 10_000)])
    harness.step(T0)
    harness.step(T0 + 30)
    harness.post([alert("A", end=T0 + 40)])  # resolved as Prometheus resolves: endsAt passes
    harness.step(T0 + 100)
    harness.step(T0 + 330)
    assert sent_alerts(stub) == [[("A", "firing")], [("A", "resolved")]]
    assert harness.state.store.list_groups() == []
    harness.step(T0 + 5000)
    assert len(stub.sent) == 2


def test_send_resolved_false_skips_resolved_notifications(harness_factory):
    h = harness_factory(
        receivers=[
            {
                "name": "default",
                "webhook_configs": [{"url": "http://127.0.0.1:9/", "send_resolved": False}],
            }
        ]
    )
    stub = h.stubs["default"]
    h.post([alert("A", end=T0 + 10_000), alert("B", end=T0 + 10_000)])
    h.step(T0)
    h.step(T0 + 30)
    h.post([alert("B", end=T0 + 31)])
    h.step(T0 + 330)
    assert sent_alerts(stub) == [[("A", "firing")], [("B", "firing")]]


def test_resolve_timeout_resolves_alerts_without_endsat(harness):
    stub = harness.stubs["default"]
    harness.post([{"labels": {"alertname": "A", "server": "s1"}}])
    now = time.time()
    harness.step(now)
    harness.step(now + 30)
    harness.step(now + 30 + 300 + 1)  # resolve_timeout 5m passed without an update
    assert sent_alerts(stub) == [[("A", "firing")], [("A", "resolved")]]
    transitions = [e["transition"] for e in harness.client.get("/api/v1/history?kind=alert").json]
    assert transitions == ["firing", "resolved"]


def test_silence_mutes_and_expiry_unmutes(harness):
    stub = harness.stubs["default"]
    silence = {
        "matchers": [{"name": "server", "value": "s1", "isRegex": False}],
        "startsAt": format_time(time.time()),
        "endsAt": format_time(T0 + 100),
        "createdBy": "ops",
        "comment": "maintenance",
    }
    from tests.alert_router.harness import AUTH

    resp = harness.client.post("/api/v2/silences", json=silence, headers=AUTH)
    assert resp.status_code == 200
    harness.post([alert("A", end=T0 + 10_000), alert("B", server="s2", end=T0 + 10_000)])
    harness.step(T0)
    harness.step(T0 + 30)
    assert sent_alerts(stub) == [[("B", "firing")]]
    listed = harness.client.get("/api/v2/alerts?silenced=false").json
    assert [a["labels"]["alertname"] for a in listed] == ["B"]
    harness.step(T0 + 330)  # silence expired at T0+100
    assert sent_alerts(stub)[-1] == [("A", "firing")]
    assert (
        'stacksense_router_alerts_muted_total{reason="silenced"} 1.0'
        in harness.client.get("/metrics").data.decode()
    )


def test_default_inhibition_offline_server_mutes_its_other_alerts(harness_factory):
    h = harness_factory(route={"receiver": "default", "group_by": ["..."], "group_wait": "0s"})
    stub = h.stubs["default"]
    h.post(
        [
            alert("ServerOffline", "s1", end=T0 + 10_000),
            alert("HighCpuUsage", "s1", end=T0 + 10_000),
            alert("HighCpuUsage", "s2", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    got = sorted(tuple(n.alerts[0].labels.values()) for n in stub.sent)
    assert got == [("HighCpuUsage", "s2"), ("ServerOffline", "s1")]
    status = {
        a["labels"]["server"] + a["labels"]["alertname"]: a["status"]
        for a in h.client.get("/api/v2/alerts").json
    }
    assert status["s1HighCpuUsage"]["state"] == "suppressed"
    assert status["s1HighCpuUsage"]["inhibitedBy"]
    assert status["s1ServerOffline"]["state"] == "active"


def test_inhibit_rules_can_be_turned_off(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_by": ["..."], "group_wait": "0s"}, inhibit_rules=[]
    )
    h.post([alert("ServerOffline", end=T0 + 10_000), alert("HighCpuUsage", end=T0 + 10_000)])
    h.step(T0)
    assert len(h.stubs["default"].sent) == 2


def test_continue_sends_to_each_matching_receiver(harness_factory):
    hook = [{"url": "http://127.0.0.1:9/"}]
    h = harness_factory(
        route={
            "receiver": "default",
            "group_wait": "0s",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
                {"receivers_by_label": {"label": "server", "receivers": {"web-1": "team-web"}}},
            ],
        },
        receivers=[{"name": n, "webhook_configs": hook} for n in ("default", "pager", "team-web")],
    )
    h.post(
        [
            alert("Down", "web-1", severity="critical", end=T0 + 10_000),
            alert("Down", "db-1", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    got = {
        name: sorted(a.labels["server"] for n in stub.sent for a in n.alerts)
        for name, stub in h.stubs.items()
    }
    assert got == {"default": ["db-1"], "pager": ["web-1"], "team-web": ["web-1"]}


def test_retry_with_backoff_honours_retry_after_then_delivers(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_wait": "0s"},
        delivery={"initial_backoff": "2s", "max_backoff": "1m"},
    )
    stub = h.stubs["default"]
    stub.fail_with = NotifyError("503 from receiver", retryable=True, reason="http_5xx")
    h.post([alert("A", end=T0 + 10_000)])
    h.step(T0)
    store = h.state.store
    assert store.outbox_counts() == {"pending": 1}
    # 2 s, jitter up to a fifth shorter: max_backoff and each doubling are true maxima
    assert T0 + 1.6 <= store.next_outbox_attempt() <= T0 + 2
    h.state.outbox.step(T0 + 1)
    assert stub.sent == []  # not due yet
    h.state.outbox.step(T0 + 3)  # second failure: backoff doubles
    assert T0 + 3 + 3.2 <= store.next_outbox_attempt() <= T0 + 3 + 4
    stub.fail_with = NotifyError("slow down", retryable=True, reason="rate_limited", retry_after=30)
    h.state.outbox.step(T0 + 8)
    assert store.next_outbox_attempt() == pytest.approx(T0 + 8 + 30, abs=0.01)
    stub.fail_with = None
    h.state.outbox.step(T0 + 38)
    assert sent_alerts(stub) == [[("A", "firing")]]
    text = h.client.get("/metrics").data.decode()
    assert (
        'stacksense_router_notifications_failed_total{integration="stub",reason="http_5xx",'
        'receiver="default"} 2.0'
    ) in text
    assert (
        'stacksense_router_notifications_sent_total{integration="stub",receiver="default"} 1.0'
        in text
    )


def test_non_retryable_error_is_marked_failed_and_recorded(harness_factory):
    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    h.stubs["default"].fail_with = NotifyError("404 no_service", retryable=False, reason="http_4xx")
    h.post([alert("A", end=T0 + 10_000)])
    h.step(T0)
    assert h.state.store.outbox_counts() == {"failed": 1}
    events = h.client.get("/api/v1/history?kind=notification").json
    assert [(e["transition"], e["server"]) for e in events] == [("failed", "s1")]
    assert "http_4xx" in events[0]["reason"]


def test_given_up_notifications_are_forgotten_with_their_traces(harness_factory):
    from alert_router.trace import RETENTION

    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    h.stubs["default"].fail_with = NotifyError("404 no_service", retryable=False, reason="http_4xx")
    h.post([alert("A", end=T0 + 10 * RETENTION)])
    h.step(T0)
    assert h.state.store.outbox_counts() == {"failed": 1}
    h.state.dispatcher.gc(T0 + RETENTION - 60)  # still retryable from its trace
    assert h.state.store.outbox_counts() == {"failed": 1}
    h.state.dispatcher.gc(T0 + RETENTION + 60)
    assert h.state.store.outbox_counts() == {}


def test_history_is_forgotten_after_its_retention(harness_factory, storage):
    h = harness_factory(storage={**storage, "history_retention": "2d"})
    h.post([alert("A", end=T0 + 10_000)])
    h.step(T0)
    assert h.client.get("/api/v1/history?kind=alert").json
    h.state.dispatcher.gc(T0 + 2 * 86400 - 60)
    assert h.client.get("/api/v1/history?kind=alert").json
    h.state.dispatcher.gc(T0 + 2 * 86400 + 60)
    assert h.client.get("/api/v1/history?kind=alert").json == []


def test_gives_up_after_the_configured_age(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_wait": "0s"}, delivery={"give_up_after": "1m"}
    )
    h.stubs["default"].fail_with = NotifyError("down", retryable=True, reason="connection")
    h.post([alert("A", end=T0 + 10_000)])
    h.step(T0)
    h.state.outbox.step(T0 + 120)
    assert h.state.store.outbox_counts() == {"failed": 1}


def test_incident_lifecycle_and_history(harness):
    from tests.alert_router.harness import AUTH

    c = harness.client
    harness.post([alert("A", end=T0 + 10_000), alert("A", "s2", end=T0 + 10_000)])
    harness.step(T0)
    harness.step(T0 + 30)  # group_wait over: notified
    incidents = c.get("/api/v1/incidents?server=s1").json
    assert [(i["title"], i["state"]) for i in incidents] == [("A on s1", "open")]
    iid = incidents[0]["id"]
    resp = c.post(
        f"/api/v1/incidents/{iid}/acknowledge",
        json={"by": "alice", "reason": "looking"},
        headers=AUTH,
    )
    assert resp.status_code == 200 and resp.json["acknowledged_by"] == "alice"
    assert (
        c.post(f"/api/v1/incidents/{iid}/acknowledge", json={"by": "bob"}, headers=AUTH).status_code
        == 409
    )
    assert (
        c.post(
            f"/api/v1/incidents/{iid}/acknowledge", json={"reason": "x"}, headers=AUTH
        ).status_code
        == 400
    )
    assert c.post("/api/v1/incidents/999/close", json={"by": "x"}, headers=AUTH).status_code == 404
    harness.post([alert("A", end=T0 + 50)])
    harness.step(T0 + 60)
    assert c.get(f"/api/v1/incidents/{iid}").json["state"] == "resolved"
    # Fires again before anyone closed it: the same incident reopens.
    harness.post([alert("A", start=T0 + 70, end=T0 + 10_000)])
    harness.step(T0 + 80)
    assert c.get(f"/api/v1/incidents/{iid}").json["state"] == "open"
    resp = c.post(
        f"/api/v1/incidents/{iid}/close", json={"by": "alice", "reason": "fixed"}, headers=AUTH
    )
    assert resp.json["state"] == "closed" and resp.json["closed_by"] == "alice"
    detail = c.get(f"/api/v1/incidents/{iid}").json
    assert [(h["transition"], h["actor"]) for h in detail["history"]] == [
        ("open", "router"),
        ("acknowledged", "alice"),
        ("resolved", "router"),
        ("open", "router"),
        ("closed", "alice"),
    ]
    # The audit trail by server and time.
    s1 = c.get(f"/api/v1/history?server=s1&since={T0 - 1}").json
    assert {e["kind"] for e in s1} == {"alert", "incident", "notification"}
    assert all(e["server"] == "s1" for e in s1)
    # The people's transitions ran on the real clock, before the test clock's T0.
    early = c.get(f"/api/v1/history?server=s1&until={T0 - 1}").json
    assert [(e["transition"], e["actor"]) for e in early] == [
        ("acknowledged", "alice"),
        ("closed", "alice"),
    ]
    assert c.get("/api/v1/history?since=yesterday").status_code == 400


def test_restart_keeps_pending_notifications_and_sends_nothing_twice(harness_factory, tmp_path):
    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    h.post([alert("A", end=T0 + 10_000), alert("B", "s2", end=T0 + 10_000)])
    h.state.dispatcher.step(T0)  # enqueued, not sent: then the process "dies"
    h.state.close()
    h2 = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    h2.step(T0 + 1)
    h2.step(T0 + 400)
    assert h.stubs["default"].sent == []
    assert sent_alerts(h2.stubs["default"]) == [[("A", "firing"), ("B", "firing")]]


def test_two_sided_inhibition_never_mutes_each_other(harness_factory):
    """Alertmanager's excludeTwoSidedMatch: two alerts matching both sides of a rule (two
    ServerOffline for one server with differing labels) are both sent; a one-sided target of
    the same server is still muted."""
    h = harness_factory(
        route={"receiver": "default", "group_by": ["..."], "group_wait": "0s"},
        inhibit_rules=[
            {
                "source_matchers": ['alertname="ServerOffline"'],
                "target_matchers": ['severity=~"critical|warning"'],
                "equal": ["server"],
            }
        ],
    )
    stub = h.stubs["default"]
    h.post(
        [
            alert("ServerOffline", "s1", severity="critical", source="rules", end=T0 + 10_000),
            alert("ServerOffline", "s1", severity="critical", source="prometheus", end=T0 + 10_000),
            alert("HighCpuUsage", "s1", severity="warning", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    got = sorted(
        (a.labels["alertname"], a.labels.get("source", "")) for n in stub.sent for a in n.alerts
    )
    assert got == [("ServerOffline", "prometheus"), ("ServerOffline", "rules")]


def test_fully_muted_group_keeps_its_notification_log(harness_factory):
    """A group whose alerts are all silenced writes no empty log entry: when the silence
    ends, the unchanged firing set waits for repeat_interval (no extra page)."""
    from tests.alert_router.harness import AUTH

    h = harness_factory(
        route={
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        }
    )
    stub = h.stubs["default"]
    h.post([alert("A", end=T0 + 100_000)])
    h.step(T0)
    assert sent_alerts(stub) == [[("A", "firing")]]
    silence = {
        "matchers": [{"name": "alertname", "value": "A", "isRegex": False}],
        "startsAt": format_time(time.time()),
        "endsAt": format_time(T0 + 400),
        "createdBy": "ops",
        "comment": "maintenance",
    }
    assert h.client.post("/api/v2/silences", json=silence, headers=AUTH).status_code == 200
    h.step(T0 + 300)  # flushed while muted: nothing sent, log kept
    assert len(stub.sent) == 1
    h.post([alert("A", end=T0 + 100_000)])
    for minutes in range(10, 4 * 60, 5):  # silence over at T0+400; repeat is 4 h
        h.step(T0 + minutes * 60)
    assert len(stub.sent) == 1
    h.step(T0 + 4 * 3600 + 300)
    assert sent_alerts(stub) == [[("A", "firing")], [("A", "firing")]]


def test_notification_log_is_written_after_the_send(harness_factory):
    """A notification given up is not in the log, so the next flush sends it again (as
    Alertmanager retries at the next group_interval); one still retrying is not doubled."""
    h = harness_factory(
        route={
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "5m",
        },
        delivery={"initial_backoff": "1h", "max_backoff": "1h"},
    )
    stub = h.stubs["default"]
    stub.fail_with = NotifyError("503", retryable=True, reason="http_5xx")
    h.post([alert("A", end=T0 + 100_000)])
    h.step(T0)
    assert (
        h.state.store.get_nflog(
            next(iter([g.group_key for g in h.state.store.list_groups()])), "default", 0
        )
        is None
    )
    h.step(T0 + 300)  # still pending (retry in 1 h): the flush does not enqueue a second one
    assert h.state.store.outbox_counts() == {"pending": 1}
    stub.fail_with = NotifyError("404", retryable=False, reason="http_4xx")
    h.state.outbox.step(T0 + 3 * 3600)
    assert h.state.store.outbox_counts() == {"failed": 1}
    stub.fail_with = None
    h.step(T0 + 3 * 3600 + 300)  # nothing was delivered: the next flush notifies
    assert sent_alerts(stub) == [[("A", "firing")]]
    h.step(T0 + 3 * 3600 + 600)
    assert len(stub.sent) == 1


def test_alert_older_than_group_wait_flushes_a_new_group_at_once(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_by": ["alertname"], "group_wait": "30s"}
    )
    stub = h.stubs["default"]
    h.post(
        [alert("Old", start=T0 - 3600, end=T0 + 10_000), alert("Fresh", start=T0, end=T0 + 10_000)]
    )
    h.step(T0)
    assert sent_alerts(stub) == [[("Old", "firing")]]
    h.step(T0 + 30)
    assert sent_alerts(stub) == [[("Old", "firing")], [("Fresh", "firing")]]


def test_alert_groups_api_shape_and_filters(harness_factory):
    from tests.alert_router.harness import AUTH

    hook = [{"url": "http://127.0.0.1:9/"}]
    h = harness_factory(
        route={
            "receiver": "default",
            "group_by": ["alertname"],
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True}
            ],
        },
        receivers=[{"name": n, "webhook_configs": hook} for n in ("default", "pager")],
    )
    h.post(
        [
            alert("Down", "web-1", severity="critical", end=T0 + 10_000),
            alert("Down", "web-2", severity="critical", end=T0 + 10_000),
            alert("Slow", "web-1", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    silence = {
        "matchers": [{"name": "server", "value": "web-2", "isRegex": False}],
        "startsAt": format_time(time.time()),
        "endsAt": format_time(T0 + 100),
        "createdBy": "ops",
        "comment": "x",
    }
    assert h.client.post("/api/v2/silences", json=silence, headers=AUTH).status_code == 200
    got = h.client.get("/api/v2/alerts/groups").json
    assert [(g["labels"], g["receiver"], len(g["alerts"])) for g in got] == [
        ({"alertname": "Down"}, {"name": "pager"}, 2),
        ({"alertname": "Slow"}, {"name": "default"}, 1),
    ]
    assert set(got[0]["alerts"][0]) >= {
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "updatedAt",
        "fingerprint",
        "receivers",
        "status",
    }
    quiet = h.client.get("/api/v2/alerts/groups?silenced=false&receiver=pag.*").json
    assert [[a["labels"]["server"] for a in g["alerts"]] for g in quiet] == [["web-1"]]
    assert h.client.get('/api/v2/alerts/groups?filter=alertname="Slow"').json[0]["labels"] == {
        "alertname": "Slow"
    }
    assert h.client.get("/api/v2/alerts/groups?active=maybe").status_code == 400


def test_a_newer_notification_replaces_one_still_waiting_for_a_retry(harness_factory):
    h = harness_factory(
        route={
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "5m",
        },
        delivery={"initial_backoff": "1h", "max_backoff": "1h"},
    )
    stub = h.stubs["default"]
    stub.fail_with = NotifyError("503", retryable=True, reason="http_5xx")
    h.post([alert("A", end=T0 + 100_000)])
    h.step(T0)
    h.post([alert("A", "s2", end=T0 + 100_000)])
    stub.fail_with = None
    h.step(T0 + 300)  # the group changed: the waiting notification is replaced, then sent
    h.step(T0 + 2 * 3600)
    assert [sorted(a.labels["server"] for a in n.alerts) for n in stub.sent] == [["s1", "s2"]]
