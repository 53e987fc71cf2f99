"""Durable delivery with a real router process: SIGKILL mid-burst, receivers down then back."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.peers.router import RouterProcess, router
from tests.peers.util import wait_for
from tests.peers.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow
BURST = 300


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as hook:
        yield hook


def config(receiver: WebhookReceiver, group_wait: str = "4s") -> dict:
    return {
        # '...': every alert is its own group, so each alert is one notification.
        "route": {
            "receiver": "hook",
            "group_by": ["..."],
            "group_wait": group_wait,
            "group_interval": "1s",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": receiver.url}]}],
        "delivery": {"initial_backoff": "200ms", "max_backoff": "1s"},
    }


def alert(i: int) -> dict:
    return {
        "labels": {"alertname": "Burst", "server": f"host-{i}", "n": str(i)},
        "endsAt": "2099-01-01T00:00:00Z",
    }


def drained(proc: RouterProcess) -> bool:
    text = requests.get(f"{proc.url}/metrics", timeout=5).text
    return (
        "stacksense_router_outbox_depth 0.0" in text
        and "stacksense_router_inbox_requests 0.0" in text
    )


def delivered(receiver: WebhookReceiver) -> Counter[str]:
    return Counter(a["labels"]["n"] for a in receiver.alerts())


def test_sigkill_mid_burst_then_restart_notifies_every_alert_exactly_once(tmp_path, receiver):
    # group_wait (4 s) outlasts the first half of the burst, so the kill lands while alerts
    # arrive, not while a notification is between the receiver's answer and its "sent"
    # commit (the documented at-least-once window of about a millisecond).
    acknowledged: list[int] = []
    with router(tmp_path, config(receiver)) as proc:
        killed = threading.Event()

        def burst() -> None:
            session = requests.Session()
            for i in range(BURST):
                try:
                    resp = session.post(
                        f"{proc.url}/api/v2/alerts", json=[alert(i)], headers=proc.auth, timeout=5
                    )
                except requests.RequestException:
                    continue  # the router died under us: this one was not acknowledged
                if resp.status_code == 200:
                    acknowledged.append(i)
                if i == BURST // 2:
                    killed.wait(10)

        client = threading.Thread(target=burst)
        client.start()
        wait_for(lambda: len(acknowledged) > BURST // 2, what="half the burst acknowledged")
        proc.kill()
        killed.set()
        client.join(30)
        assert BURST // 2 < len(acknowledged) < BURST  # the kill really cut the burst
        # Everything acknowledged before the kill was durable: after a restart it is sent.
        proc.start()
        wait_for(
            lambda: set(delivered(receiver)) >= {str(i) for i in acknowledged},
            timeout=60,
            what="every acknowledged alert delivered after restart",
        )
        # The client re-sends the whole burst, as Prometheus re-sends firing alerts.
        session = requests.Session()
        for start in range(0, BURST, 50):
            batch = [alert(i) for i in range(start, min(start + 50, BURST))]
            assert (
                session.post(
                    f"{proc.url}/api/v2/alerts", json=batch, headers=proc.auth, timeout=10
                ).status_code
                == 200
            )
        wait_for(
            lambda: len(delivered(receiver)) == BURST, timeout=60, what="every alert delivered"
        )
        wait_for(lambda: drained(proc), timeout=30, what="outbox drained")
    counts = delivered(receiver)
    assert set(counts) == {str(i) for i in range(BURST)}
    assert [n for n, c in counts.items() if c != 1] == []


def test_receiver_down_for_a_while_gets_everything_when_back(tmp_path, receiver):
    with router(tmp_path, config(receiver, group_wait="0s")) as proc:
        receiver.stop()  # connection refused
        resp = requests.post(
            f"{proc.url}/api/v2/alerts",
            headers=proc.auth,
            timeout=10,
            json=[alert(i) for i in range(20)],
        )
        assert resp.status_code == 200

        def failures() -> float:
            text = requests.get(f"{proc.url}/metrics", timeout=5).text
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("stacksense_router_notifications_failed_total{")
            )

        wait_for(lambda: failures() >= 40, timeout=30, what="retries while the receiver is down")
        receiver.start()  # back on the same port, first answering 503
        receiver.status = 503
        wait_for(lambda: failures() >= 60, timeout=30, what="retries while the receiver fails")
        receiver.status = 200
        wait_for(lambda: len(delivered(receiver)) == 20, timeout=30, what="all delivered")
        wait_for(lambda: drained(proc), timeout=30, what="outbox drained")
    assert sorted(delivered(receiver).values()) == [1] * 20


POISON_BODIES = [
    # A lone surrogate: valid JSON text, but no UTF-8 exists for it (fingerprint, store).
    ('[{"labels": {"alertname": "\\ud800", "server": "s1"}}]', "postable"),
    ("[{broken json", "normalised"),
    ('{"not": "a list"}', "normalised"),
]


def test_poison_rows_are_set_aside_and_later_alerts_flow(harness_factory):
    """Rows the dispatcher cannot merge, written straight into the store's inbox, are set
    aside with a metric; the alert posted after them is notified."""
    import time as _time

    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    store = h.state.store
    now = _time.time()
    for body, form in POISON_BODIES:
        store.inbox.add("api", body, now, form)
    h.post([{"labels": {"alertname": "AfterPoison", "server": "s2"}}])
    h.step(now + 1)
    h.step(now + 2)
    assert [a.labels["alertname"] for n in h.stubs["default"].sent for a in n.alerts] == [
        "AfterPoison"
    ]
    assert store.inbox.depth() == 0
    kept = store.list_set_aside()
    assert len(kept) == 3 and {k["kind"] for k in kept} == {"inbox"}
    assert any("\\ud800" in k["body"] for k in kept)
    text = h.client.get("/metrics").data.decode()
    assert 'stacksense_router_alerts_set_aside_total{stage="inbox"} 3.0' in text


def test_a_group_with_an_unreadable_alert_does_not_hold_up_the_others(harness_factory):
    import time as _time

    h = harness_factory(
        route={"receiver": "default", "group_by": ["alertname"], "group_wait": "0s"}
    )
    now = _time.time()
    h.post([{"labels": {"alertname": "Broken"}}])
    h.state.dispatcher.ingest(now)
    with h.state.store.tx() as conn:
        conn.execute("UPDATE alerts SET labels = ? WHERE alertname = ?", ("{not json", "Broken"))
    # Reads skip the unreadable row instead of failing.
    listed = h.client.get("/api/v2/alerts")
    assert listed.status_code == 200 and listed.json == []
    h.post([{"labels": {"alertname": "Fine"}}])
    h.step(now + 1)
    assert [a.labels["alertname"] for n in h.stubs["default"].sent for a in n.alerts] == ["Fine"]
    assert (
        'stacksense_router_alerts_set_aside_total{stage="group"} 1.0'
        in h.client.get("/metrics").data.decode()
    )
    # The unreadable alert was moved to the set_aside table; its group lives on.
    assert [(k["kind"], k["body"].split("\n")[0]) for k in h.state.store.list_set_aside()] == [
        ("alert", "{not json")
    ]
    # The rest ends (resolve_timeout 5 min) as usual: nothing stalls.
    h.step(now + 400)
    assert h.state.store.count_alerts(now + 400) == 0
    assert [
        (n.status, [a.labels["alertname"] for a in n.alerts]) for n in h.stubs["default"].sent
    ] == [("firing", ["Fine"]), ("resolved", ["Fine"])]


def test_poison_request_in_a_live_router_then_a_normal_alert_is_notified(tmp_path, receiver):
    """Two gunicorn workers; a request the dispatcher cannot merge sits in an inbox file
    (as an older router accepted it): the next alert is still delivered."""
    import os
    import socket
    import sqlite3
    import time as _time

    from alert_router.inbox import INBOX_SCHEMA

    with router(tmp_path, config(receiver, group_wait="0s"), workers=2) as proc:
        # An inbox file of a live process (this test's), as the store names them.
        path = f"{tmp_path / 'router.db'}.inbox.poison00.{os.getpid()}.{socket.gethostname()}.db"
        conn = sqlite3.connect(path)
        conn.executescript(INBOX_SCHEMA)
        for body, form in POISON_BODIES:
            conn.execute(
                "INSERT INTO inbox (source, received_at, body, form) VALUES (?, ?, ?, ?)",
                ("api", _time.time(), body, form),
            )
        conn.commit()
        conn.close()
        _time.sleep(1.0)  # the dispatcher reaches the poison first
        assert (
            requests.post(
                f"{proc.url}/api/v2/alerts", headers=proc.auth, timeout=10, json=[alert(1)]
            ).status_code
            == 200
        )
        wait_for(lambda: receiver.alerts(), timeout=30, what="the alert after the poison")
        assert [a["labels"]["n"] for a in receiver.alerts()] == ["1"]

        def set_aside() -> float:
            for _ in range(4):  # both workers answer /metrics the same
                text = requests.get(
                    f"{proc.url}/metrics", timeout=5, headers={"Connection": "close"}
                ).text
                for line in text.splitlines():
                    if line.startswith('stacksense_router_alerts_set_aside_total{stage="inbox"}'):
                        return float(line.split()[-1])
            return 0.0

        wait_for(lambda: set_aside() == 3.0, timeout=10, what="set_aside metric is 3")
        assert proc.log().count("set aside, it cannot be merged") == 3
