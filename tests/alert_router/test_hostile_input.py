"""Hostile input against the router under gunicorn (2 workers): a 4xx naming what is wrong,
never a 5xx, and nothing stored that the router cannot read back or fingerprint."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from alert_router.fingerprint import fingerprint
from tests.peers.router import RouterProcess, router
from tests.peers.util import wait_for
from tests.peers.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, hook: WebhookReceiver
) -> Iterator[RouterProcess]:
    config = {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "1s",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
    }
    with router(tmp_path_factory.mktemp("hostile"), config, workers=2) as proc:
        yield proc


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _silence(**override: Any) -> dict[str, Any]:
    body = {
        "matchers": [{"name": "alertname", "value": "X", "isRegex": False}],
        "startsAt": _iso(timedelta(0)),
        "endsAt": _iso(timedelta(hours=1)),
        "createdBy": "me",
        "comment": "maintenance",
    }
    body.update(override)
    return body


def _raw(text: str) -> bytes:
    """JSON text kept as written (a `\\ud800` escape stays an escape)."""
    return text.encode()


DEEP = b"[" * 100_000
V2 = "/api/v2/alerts"
V1 = "/api/v1/alerts"
AM_HOOK = "/api/v1/webhook/alertmanager"
SILENCES = "/api/v2/silences"
JSON = "application/json"

# (path, body, content type, what the error message must name)
CASES = [
    (V2, DEEP, JSON, "nested too deeply"),
    (V1, DEEP, JSON, "nested too deeply"),
    (AM_HOOK, DEEP, JSON, "nested too deeply"),
    (SILENCES, DEEP, JSON, "nested too deeply"),
    (V2, _raw('[{"labels":{"alertname":"\\ud800"}}]'), JSON, "alerts[0].labels.alertname"),
    (
        V2,
        _raw('[{"labels":{"alertname":"A"},"annotations":{"s":"x\\udfff"}}]'),
        JSON,
        "alerts[0].annotations.s",
    ),
    (
        V2,
        _raw('[{"labels":{"alertname":"A"},"annotations":{"\\ud800":"x"}}]'),
        JSON,
        "alerts[0].annotations.<name>",
    ),
    (V1, _raw('{"name":"\\uD800"}'), JSON, "name"),
    (
        AM_HOOK,
        _raw('{"version":"4","alerts":[{"labels":{"a":"\\ud800"}}]}'),
        JSON,
        "alerts[0].labels.a",
    ),
    (
        SILENCES,
        json.dumps(_silence(comment="\ud800"), ensure_ascii=False).encode("utf-8", "surrogatepass"),
        JSON,
        "not valid UTF-8",
    ),
    (SILENCES, _raw(json.dumps(_silence()).replace('"maintenance"', '"\\ud800"')), JSON, "comment"),
    (SILENCES, _raw(json.dumps(_silence()).replace('"me"', '"\\udc00"')), JSON, "createdBy"),
    (SILENCES, _raw(json.dumps(_silence()).replace('"X"', '"\\ud800"')), JSON, "matchers[0].value"),
    (V2, json.dumps([{"labels": {"alertname": "A"}}]).encode("utf-16"), JSON, "UTF-8"),
    (V1, json.dumps({"name": "A"}).encode("utf-16"), JSON, "UTF-8"),
    (SILENCES, json.dumps(_silence()).encode("utf-16"), JSON, "UTF-8"),
    (V2, b'[{"labels":{"alertname":"\xc3\x28"}}]', JSON, "not valid UTF-8"),
    (
        V2,
        json.dumps([{"labels": {"alertname": "A"}}]).encode(),
        f"{JSON}; charset=utf-16",
        "charset",
    ),
    (SILENCES, json.dumps(_silence()).encode(), f"{JSON}; charset=latin-1", "charset"),
    (
        "/api/v1/webhook/grafana",
        _raw('{"alerts":[{"labels":{"alertname":"\\ud800"}}]}'),
        JSON,
        "alerts[0].labels.alertname",
    ),
    ("/api/v1/incidents/1/acknowledge", _raw('{"by":"\\ud800"}'), JSON, "by"),
    ("/api/v1/incidents/1/close", b"[" * 100_000, JSON, "nested too deeply"),
    (V2, b"", JSON, "body: empty"),
    # A label name with a trailing newline (Python's `$` would let it through).
    (V2, _raw('[{"labels":{"alertname":"A","job\\n":"x"}}]'), JSON, "invalid label name"),
    (
        V2,
        _raw('[{"labels":{"alertname":"A"},"annotations":{"s":3}}]'),
        JSON,
        "alerts[0].annotations.s: must be a string",
    ),
    (V2, b"\xef\xbb\xbf[]", JSON, "invalid JSON"),
]


@pytest.mark.parametrize(
    ("path", "body", "content_type", "names"),
    CASES,
    ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)],
)
def test_hostile_bodies_are_a_400_naming_the_field(live, path, body, content_type, names):
    resp = requests.post(
        f"{live.url}{path}",
        data=body,
        timeout=30,
        headers={**live.auth, "Content-Type": content_type},
    )
    assert resp.status_code == 400, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("application/json")
    message = resp.json()
    message = message if isinstance(message, str) else message["error"]
    assert names in message


def test_a_valid_surrogate_pair_is_accepted_and_delivered(live, hook):
    body = _raw('[{"labels":{"alertname":"Pair","emoji":"\\ud83d\\ude00"}}]')
    resp = requests.post(
        f"{live.url}{V2}", data=body, timeout=10, headers={**live.auth, "Content-Type": JSON}
    )
    assert resp.status_code == 200
    wait_for(
        lambda: any(a["labels"].get("emoji") == "\U0001f600" for a in hook.alerts()),
        timeout=30,
        what="the emoji alert delivered",
    )


def test_the_poison_alert_is_refused_and_the_next_alert_is_notified(live, hook):
    poison = _raw('[{"labels":{"alertname":"Poison","server":"\\ud800"}}]')
    resp = requests.post(
        f"{live.url}{V2}", data=poison, timeout=10, headers={**live.auth, "Content-Type": JSON}
    )
    assert resp.status_code == 400
    resp = requests.post(
        f"{live.url}{V2}",
        json=[{"labels": {"alertname": "AfterPoison"}}],
        headers=live.auth,
        timeout=10,
    )
    assert resp.status_code == 200
    wait_for(
        lambda: any(a["labels"]["alertname"] == "AfterPoison" for a in hook.alerts()),
        timeout=30,
        what="the alert after the poison delivered",
    )
    assert not any(a["labels"]["alertname"] == "Poison" for a in hook.alerts())


def _plant_poison(db: Path) -> None:
    """Rows holding lone surrogates, as a router before input checks could have stored."""
    now = time.time()
    labels = json.dumps({"alertname": "Old\ud800", "server": "s1"})  # ASCII \ud800 escape
    conn = sqlite3.connect(db, timeout=30)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(alerts)")]
        row: dict[str, Any] = {
            "fingerprint": "00000000deadbeef",
            "labels": labels,
            "annotations": json.dumps({"summary": "\udfff"}),
            "starts_at": now - 60,
            "ends_at": now + 3600,
            "generator_url": "",
            "updated_at": now,
            "state": "firing",
            "server": "s1",
            "alertname": "Old",
        }
        names = [c for c in columns if c in row]
        conn.execute(
            f"INSERT INTO alerts ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [row[c] for c in names],
        )
        conn.commit()
    finally:
        conn.close()


def test_reads_never_fail_on_a_surrogate_already_stored(live):
    resp = requests.post(
        f"{live.url}{SILENCES}", json=_silence(comment="plain"), headers=live.auth, timeout=10
    )
    assert resp.status_code == 200
    _plant_poison(live.workdir / "router.db")
    for _ in range(4):  # both workers
        page = requests.get(f"{live.url}/", timeout=10, headers={"Connection": "close"})
        assert page.status_code == 200
        assert "Old\ufffd" in page.text
        alerts = requests.get(f"{live.url}{V2}", timeout=10, headers={"Connection": "close"})
        assert alerts.status_code == 200
        assert any(a["labels"]["alertname"] == "Old\ud800" for a in alerts.json())
        filtered = requests.get(
            f"{live.url}{V2}", params={"filter": 'alertname=~"Old.*"'}, timeout=10
        )
        assert filtered.status_code == 200 and len(filtered.json()) == 1
        assert requests.get(f"{live.url}{SILENCES}", timeout=10).status_code == 200


def test_fingerprint_is_total_and_deterministic():
    poisoned = {"alertname": "\ud800", "server": "s"}
    first = fingerprint(poisoned)
    assert first == fingerprint(dict(poisoned)) and len(first) == 16
    assert first != fingerprint({"alertname": "\ufffd", "server": "s"})
    # Valid text keeps Alertmanager's fingerprint (unchanged encoding).
    assert fingerprint({"alertname": "A"}) == fingerprint({"alertname": "A"})


def test_unauthenticated_writes_accept_json_only(tmp_path):
    """No cross-site form post: without a token, a write must be application/json (415)."""
    config = {
        "route": {"receiver": "null"},
        "receivers": [{"name": "null"}],
        "auth": {"allow_unauthenticated_writes": True},
    }
    with router(tmp_path, config, workers=2) as proc:
        alert = json.dumps([{"labels": {"alertname": "Form"}}])
        for path, body in (
            (V2, alert),
            (V1, '{"name": "Form"}'),
            (SILENCES, json.dumps(_silence())),
        ):
            for content_type in (
                "application/x-www-form-urlencoded",
                "text/plain",
                "multipart/form-data; boundary=x",
                None,
            ):
                headers = {"Content-Type": content_type} if content_type else {}
                resp = requests.post(f"{proc.url}{path}", data=body, headers=headers, timeout=10)
                assert resp.status_code == 415, (path, content_type, resp.text[:200])
                message = resp.json()
                message = message if isinstance(message, str) else message["error"]
                assert "application/json" in message
        # /-/reload follows the one reload rule of every service (stacksense_common.ops):
        # with no token, loopback clients only and never a web page (its Origin header).
        for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
            headers = {"Origin": "http://evil.example"}
            if content_type:
                headers["Content-Type"] = content_type
            resp = requests.post(f"{proc.url}/-/reload", data="", headers=headers, timeout=10)
            assert resp.status_code == 401, (content_type, resp.text[:200])
            assert "Origin" in resp.json()["error"]
        assert requests.post(f"{proc.url}/-/reload", timeout=10).status_code == 200
        for path, body in (
            (V2, alert),
            (V1, '{"name": "Form"}'),
            (SILENCES, json.dumps(_silence())),
        ):
            resp = requests.post(
                f"{proc.url}{path}",
                data=body,
                timeout=10,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            assert resp.status_code == 200, (path, resp.text[:200])
