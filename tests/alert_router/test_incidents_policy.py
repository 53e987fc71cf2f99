"""Incidents only for what needs a human (issue 9, item 5)."""

from __future__ import annotations

import json

from tests.alert_router.test_dispatch import T0, alert


def incidents(h) -> list[tuple[str, str]]:
    return sorted((i["title"], i["state"]) for i in h.state.store.list_incidents())


def test_watchdog_info_and_none_never_open_incidents(harness_factory):
    h = harness_factory(route={"receiver": "default", "group_by": ["..."], "group_wait": "0s"})
    h.post(
        [
            alert("Watchdog", "", severity="none", end=T0 + 10_000),
            alert("Watchdog", "", end=T0 + 10_000),
            alert("InfoInhibitor", "s1", severity="info", end=T0 + 10_000),
            alert("Quiet", "s1", severity="none", end=T0 + 10_000),
            alert("DiskFillingSlowly", "s1", severity="info", end=T0 + 10_000),
            alert("DiskAlmostFull", "s1", severity="warning", end=T0 + 10_000),
            alert("HostDown", "s2", severity="critical", end=T0 + 10_000),
            alert("NoSeverity", "s3", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    assert incidents(h) == [
        ("DiskAlmostFull on s1", "open"),
        ("HostDown on s2", "open"),
        ("NoSeverity on s3", "open"),
    ]
    # Every alert is still notified: the policy is about incidents only.
    assert sum(len(n.alerts) for n in h.stubs["default"].sent) == 8


def test_open_for_severities_is_configurable(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_by": ["..."], "group_wait": "0s"},
        incidents={"open_for_severities": ["critical", "info"]},
    )
    h.post(
        [
            alert("A", "s1", severity="warning", end=T0 + 10_000),
            alert("B", "s1", severity="info", end=T0 + 10_000),
            alert("C", "s1", severity="critical", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    assert incidents(h) == [("B on s1", "open"), ("C on s1", "open")]


def test_server_online_closes_the_offline_incident_and_opens_none(harness_factory):
    h = harness_factory(
        route={"receiver": "default", "group_by": ["alertname", "server"], "group_wait": "0s"}
    )
    h.post(
        [
            alert("ServerOffline", "web-1", severity="critical", end=T0 + 10_000),
            alert("ServerOffline", "web-2", severity="critical", end=T0 + 10_000),
        ]
    )
    h.step(T0)
    assert incidents(h) == [("ServerOffline on web-1", "open"), ("ServerOffline on web-2", "open")]
    # web-1 comes back: its offline alert resolves and ServerOnline (info) fires.
    h.post(
        [
            alert("ServerOffline", "web-1", severity="critical", end=T0 + 50),
            alert("ServerOnline", "web-1", severity="info", start=T0 + 60, end=T0 + 10_000),
        ]
    )
    h.step(T0 + 60)
    assert incidents(h) == [
        ("ServerOffline on web-1", "closed"),
        ("ServerOffline on web-2", "open"),
    ]
    closed = next(i for i in h.state.store.list_incidents() if i["server"] == "web-1")
    assert closed["closed_by"] == "router"
    history = h.client.get(f"/api/v1/incidents/{closed['id']}").json["history"]
    assert [e["transition"] for e in history] == ["open", "closed"]
    assert json.loads(history[-1]["details"])["alertname"] == "ServerOnline"
