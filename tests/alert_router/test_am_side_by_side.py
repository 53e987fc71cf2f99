"""One config, one scenario, a real Alertmanager 0.25 and the router (gunicorn, 2 workers).

Both get the same alerts and silences at the same moments; two webhook sinks record what
each sends. The scenario covers grouping, `continue`, inhibition with two ServerOffline
alerts for one server, a silence that expires, a resolved alert and an alert older than
group_wait. The sinks must hold the same groups, the same number of notifications with
the same status and the same alert sets; `/api/v2/alerts/groups` must answer alike.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.peers.alertmanager import alertmanager
from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow
GROUP_WAIT = 10.0
GROUP_INTERVAL = 8.0


def config(sink: WebhookReceiver) -> dict[str, Any]:
    hook = [{"url": sink.url, "send_resolved": True}]
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "server"],
            "group_wait": f"{GROUP_WAIT:g}s",
            "group_interval": f"{GROUP_INTERVAL:g}s",
            "repeat_interval": "1h",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
                {"matchers": ['team="db"'], "receiver": "db"},
            ],
        },
        "receivers": [
            {"name": name, "webhook_configs": hook} for name in ("default", "pager", "db")
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="ServerOffline"'],
                "target_matchers": ['severity=~"critical|warning"'],
                "equal": ["server"],
            }
        ],
    }


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def labels(name: str, server: str, severity: str, **extra: str) -> dict[str, str]:
    return {"alertname": name, "server": server, "severity": severity, **extra}


INITIAL = {
    "A": labels("HighCpu", "web-1", "warning"),  # inhibited by ServerOffline on web-1
    "B": labels("HighCpu", "web-2", "warning"),  # resolved later
    "C": labels("DiskFull", "db-1", "critical", team="db"),  # pager, then db (continue)
    "D1": labels("ServerOffline", "web-1", "critical", source="rules"),
    "D2": labels("ServerOffline", "web-1", "critical", source="prometheus"),
    "S": labels("HighCpu", "web-4", "warning"),  # silenced until the silence expires
}
OLD = labels("Stale", "web-3", "warning")  # started an hour ago: flushed at once


def notifications(sink: WebhookReceiver) -> list[tuple[Any, ...]]:
    with sink.lock:
        payloads = list(sink.received)
    return [
        (
            p["receiver"],
            tuple(sorted(p["groupLabels"].items())),
            p["status"],
            frozenset((tuple(sorted(a["labels"].items())), a["status"]) for a in p["alerts"]),
        )
        for p in payloads
    ]


def groups(url: str, headers: dict[str, str]) -> Counter[tuple[Any, ...]]:
    resp = requests.get(f"{url}/api/v2/alerts/groups", headers=headers, timeout=10)
    resp.raise_for_status()
    return Counter(
        (
            tuple(sorted(g["labels"].items())),
            g["receiver"]["name"],
            frozenset((a["fingerprint"], a["status"]["state"]) for a in g["alerts"]),
        )
        for g in resp.json()
    )


def test_same_notifications_as_alertmanager(tmp_path):
    (tmp_path / "am").mkdir()
    with (
        webhook_receiver() as am_sink,
        webhook_receiver() as router_sink,
        alertmanager(tmp_path / "am", config(am_sink)) as am,
        router(tmp_path / "router", config(router_sink), workers=2) as proc,
    ):
        systems: list[tuple[str, dict[str, str], WebhookReceiver]] = [
            (am.url, {}, am_sink),
            (proc.url, proc.auth, router_sink),
        ]

        def both(path: str, body: Any) -> None:
            for url, headers, _ in systems:
                resp = requests.post(f"{url}{path}", json=body, headers=headers, timeout=10)
                assert resp.status_code == 200, (url, resp.text)

        t0 = datetime.now(UTC)
        started = time.monotonic()
        both(
            "/api/v2/silences",
            {
                "matchers": [
                    {"name": "server", "value": "web-4", "isRegex": False, "isEqual": True}
                ],
                "startsAt": iso(t0),
                "endsAt": iso(t0 + timedelta(seconds=14)),
                "createdBy": "test",
                "comment": "expires during the scenario",
            },
        )
        both(
            "/api/v2/alerts",
            [{"labels": lab} for lab in INITIAL.values()]
            + [{"labels": OLD, "startsAt": iso(t0 - timedelta(hours=1))}],
        )

        def has(sink: WebhookReceiver, test: Callable[[tuple[Any, ...]], bool]) -> bool:
            return any(test(n) for n in notifications(sink))

        def is_old(n: tuple[Any, ...]) -> bool:
            return ("alertname", "Stale") in n[1]

        # The old alert's group flushes at once in both, long before group_wait.
        wait_for(
            lambda: has(am_sink, is_old) and has(router_sink, is_old),
            timeout=GROUP_WAIT - 2,
            interval=0.1,
            what="the old alert at once",
        )
        assert time.monotonic() - started < GROUP_WAIT - 2

        # Before the first flush: the same groups, alerts and states in both.
        am_groups = groups(am.url, {})
        assert am_groups == groups(proc.url, proc.auth)
        assert len(am_groups) == 7

        # The group_wait flush: wait until both sinks hold the same number, then more.
        def settled(count: int) -> bool:
            return all(len(notifications(sink)) >= count for _, _, sink in systems)

        wait_for(
            lambda: settled(5),
            timeout=GROUP_WAIT + 20,
            interval=0.2,
            what="the group_wait flush in both",
        )
        time.sleep(max(0.0, 12.5 - (time.monotonic() - started)))
        # B resolves (endsAt now) before the next group_interval flush.
        resolved = iso(datetime.now(UTC))
        both("/api/v2/alerts", [{"labels": INITIAL["B"], "endsAt": resolved}])
        # Next flush (t0 + 18 s): B's resolved notification and, the silence over, S's first.
        wait_for(
            lambda: settled(7),
            timeout=GROUP_INTERVAL + 20,
            interval=0.2,
            what="the flush after the silence expired",
        )
        time.sleep(GROUP_INTERVAL + 2)  # a further flush: nothing new may be sent
        am_sent, router_sent = notifications(am_sink), notifications(router_sink)

    def show(sent: list[tuple[Any, ...]]) -> list[str]:
        return sorted(
            f"{r} {dict(g)} {s} "
            + str(sorted((dict(a)["alertname"], dict(a)["server"], st) for a, st in alerts))
            for r, g, s, alerts in sent
        )

    print("\n".join(["alertmanager:", *show(am_sent), "router:", *show(router_sent)]))
    assert Counter(router_sent) == Counter(am_sent)
    # What the scenario is about, stated once more on the router's side.
    sent_alerts = [
        (dict(a)["alertname"], dict(a).get("source", ""), st)
        for _, _, _, alerts in router_sent
        for a, st in alerts
    ]
    assert ("ServerOffline", "rules", "firing") in sent_alerts
    assert ("ServerOffline", "prometheus", "firing") in sent_alerts
    assert not any(
        dict(a)["server"] == "web-1" and dict(a)["alertname"] == "HighCpu"
        for _, _, _, alerts in router_sent
        for a, _ in alerts
    )
    assert sum(1 for n in router_sent if ("server", "web-4") in n[1]) == 1
    assert [n[2] for n in router_sent if ("server", "web-2") in n[1]] == ["firing", "resolved"]
