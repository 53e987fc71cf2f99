"""No duplicate from a live leader: the lease is renewed while a step runs, sends are fenced.

The process test runs the router under gunicorn with two workers and a short leader lease
(1 s, set by $STACKSENSE_ROUTER_LEADER_LEASE), a backlog of 400 single-alert groups and a
sink that takes 20 ms per request, so steps and sends outlive the lease many times over.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from alert_router.background import Runner
from tests.alert_router.test_dispatch import T0, alert
from tests.peers.router import router
from tests.peers.util import free_port, serving, wait_for

BACKLOG = 400


class SlowSink(BaseHTTPRequestHandler):
    received: list[str] = []
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        time.sleep(0.02)
        with self.lock:
            self.received.extend(a["labels"]["n"] for a in body["alerts"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_lease_overrun_backlog_sends_nothing_twice(tmp_path):
    SlowSink.received = []
    port = free_port()
    with serving(ThreadingHTTPServer(("127.0.0.1", port), SlowSink)):
        config = {
            "route": {
                "receiver": "sink",
                "group_by": ["..."],
                "group_wait": "0s",
                "group_interval": "1h",
            },
            "receivers": [
                {
                    "name": "sink",
                    "webhook_configs": [
                        {"url": f"http://127.0.0.1:{port}/", "send_resolved": False}
                    ],
                }
            ],
        }
        with router(
            tmp_path, config, workers=2, env={"STACKSENSE_ROUTER_LEADER_LEASE": "1"}
        ) as proc:
            session = requests.Session()
            for start in range(0, BACKLOG, 50):
                batch = [
                    {
                        "labels": {"alertname": "Backlog", "n": str(i)},
                        "endsAt": "2099-01-01T00:00:00Z",
                    }
                    for i in range(start, start + 50)
                ]
                assert (
                    session.post(
                        f"{proc.url}/api/v2/alerts", json=batch, headers=proc.auth, timeout=30
                    ).status_code
                    == 200
                )
            wait_for(
                lambda: len(set(SlowSink.received)) >= BACKLOG,
                timeout=180,
                interval=0.5,
                what=f"{BACKLOG} notifications",
            )
            time.sleep(3)  # anything sent twice would arrive by now
            log = proc.log()
    counts = Counter(SlowSink.received)
    duplicates = sum(c - 1 for c in counts.values())
    print(
        f"{len(counts)} notifications, {duplicates} duplicates, "
        f"{log.count('lost the dispatcher lease')} leases lost"
    )
    assert len(counts) == BACKLOG
    assert duplicates == 0


def test_a_process_that_lost_the_lease_never_sends(harness_factory):
    """The fence: a send starts only while the lease runs; otherwise the row goes back."""
    h = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    h.post([alert("A", end=T0 + 10_000)])
    h.state.dispatcher.step(T0)
    outbox = h.state.outbox
    outbox.may_send = lambda: False
    outbox.step(T0 + 1)
    assert h.stubs["default"].sent == []
    assert h.state.store.outbox_counts() == {"pending": 1}
    outbox.may_send = lambda: True
    outbox.step(T0 + 2)
    assert len(h.stubs["default"].sent) == 1


def test_the_lease_is_renewed_while_a_step_outlives_it(harness_factory):
    """Two runners on one store, the leader's step taking three lease lengths: the leader
    keeps the lease throughout and the other never leads."""
    first = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    second = harness_factory(route={"receiver": "default", "group_wait": "0s"})
    dispatcher = first.state.dispatcher
    assert dispatcher is not None and first.state.outbox is not None
    real_step = dispatcher.step
    stepping = threading.Event()

    def slow_step(now: float, **options: Any) -> Any:
        stepping.set()
        time.sleep(3.0)
        return real_step(now, **options)

    dispatcher.step = slow_step  # type: ignore[method-assign]
    leader = Runner(first.state.store, dispatcher, first.state.outbox, lease_ttl=1.0)
    leader.start()
    try:
        wait_for(stepping.is_set, timeout=10, what="the leader's slow step")
        assert second.state.dispatcher is not None and second.state.outbox is not None
        other = Runner(
            second.state.store, second.state.dispatcher, second.state.outbox, lease_ttl=1.0
        )
        other.start()
        try:
            seen = []
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                seen.append((leader.leading(), other.leader))
                time.sleep(0.05)
            assert all(lead for lead, _ in seen[5:])
            assert not any(o for _, o in seen)
        finally:
            other.stop()
    finally:
        leader.stop()
