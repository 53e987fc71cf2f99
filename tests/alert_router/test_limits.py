"""Documented limits (docs/alert-router.md, "Limits") against gunicorn with 2 workers:
each over-limit request is a 400/413 naming the limit; reads are paged and bounded; a
regex no client can make expensive (RE2)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from alert_router import limits
from alert_router.matchers import parse_matcher
from tests.peers.router import RouterProcess, router

pytestmark = pytest.mark.slow
V2 = "/api/v2/alerts"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    config = {
        "route": {"receiver": "null", "group_by": ["alertname"], "group_wait": "1h"},
        "receivers": [{"name": "null"}],
    }
    with router(tmp_path_factory.mktemp("limits"), config, workers=2) as proc:
        yield proc


def _message(resp: requests.Response) -> str:
    body = resp.json()
    return body if isinstance(body, str) else body["error"]


def _post(live: RouterProcess, path: str, body: Any) -> requests.Response:
    return requests.post(f"{live.url}{path}", json=body, headers=live.auth, timeout=60)


def _alert(i: int, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": f"Limit{i}", **labels}}


def test_alerts_per_request_is_a_413_on_every_ingest_path(live):
    too_many = [_alert(i) for i in range(limits.ALERTS_PER_REQUEST + 1)]
    for path, body in (
        (V2, too_many),
        ("/api/v1/webhook/alertmanager", {"version": "4", "alerts": too_many}),
        ("/api/v1/webhook/grafana", {"alerts": too_many}),
        ("/api/v1/alerts", {"alerts": [{"name": "A"}] * len(too_many)}),
    ):
        resp = _post(live, path, body)
        assert resp.status_code == 413, (path, resp.text[:200])
        assert "alerts per request" in _message(resp)


@pytest.mark.parametrize(
    ("alert", "names"),
    [
        (
            {
                "labels": {
                    "alertname": "A",
                    **{f"l{i}": "v" for i in range(limits.LABELS_PER_ALERT)},
                }
            },
            "labels per alert",
        ),
        (
            {"labels": {"alertname": "A", "big": "x" * (limits.LABEL_VALUE_CHARS + 1)}},
            "label value size",
        ),
        (
            {"labels": {"alertname": "A", "n" * (limits.LABEL_NAME_CHARS + 1): "v"}},
            "label name size",
        ),
        (
            {
                "labels": {"alertname": "A"},
                "annotations": {"d": "x" * (limits.ANNOTATION_VALUE_CHARS + 1)},
            },
            "annotation value size",
        ),
        (
            {
                "labels": {"alertname": "A"},
                "annotations": {f"a{i}": "v" for i in range(limits.ANNOTATIONS_PER_ALERT + 1)},
            },
            "annotations per alert",
        ),
    ],
)
def test_per_alert_limits_are_a_400_naming_the_limit(live, alert, names):
    resp = _post(live, V2, [alert])
    assert resp.status_code == 400
    message = _message(resp)
    assert names in message and "alerts[0]" in message
    assert len(message) < 1000  # the oversized value is not echoed


def _silence(**override: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": "X", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "me",
        "comment": "maintenance",
    }
    body.update(override)
    return body


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ({"comment": "c" * (limits.SILENCE_COMMENT_CHARS + 1)}, "silence comment size"),
        ({"createdBy": "c" * (limits.SILENCE_CREATED_BY_CHARS + 1)}, "silence createdBy size"),
        (
            {
                "matchers": [
                    {"name": f"l{i}", "value": "v", "isRegex": False}
                    for i in range(limits.MATCHERS_PER_SILENCE + 1)
                ]
            },
            "matchers per silence",
        ),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, "matchers[0]"),
        ({"matchers": [{"name": "a", "value": "(?<=x)y", "isRegex": True}]}, "matchers[0]"),
    ],
)
def test_silence_limits_and_bad_regexes_are_a_400(live, override, names):
    resp = _post(live, "/api/v2/silences", _silence(**override))
    assert resp.status_code == 400
    assert names in _message(resp)


def test_body_size_is_a_413_naming_the_limit(live):
    body = b"[" + b" " * (6 * 1024 * 1024) + b"]"
    resp = requests.post(
        f"{live.url}{V2}",
        data=body,
        timeout=60,
        headers={**live.auth, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert "larger than" in _message(resp)


def test_reads_are_paged_and_the_page_bounded(live):
    total = limits.PAGE_ROWS + 50
    resp = _post(live, V2, [_alert(i, page="yes", filler="f" * 200) for i in range(total)])
    assert resp.status_code == 200

    def stored() -> int:
        return len(
            requests.get(f"{live.url}{V2}", params={"filter": 'page="yes"'}, timeout=30).json()
        )

    deadline = time.monotonic() + 60
    while stored() < total and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored() == total

    seen: list[str] = []
    url: str | None = f"{live.url}{V2}?filter=page%3D%22yes%22&limit=100"
    while url:
        resp = requests.get(url, timeout=30)
        assert resp.status_code == 200 and len(resp.json()) <= 100
        seen += [a["fingerprint"] for a in resp.json()]
        link = resp.headers.get("Link")
        url = f"{live.url}{re.match(r'<([^>]+)>', link).group(1)}" if link else None
    assert len(seen) == total == len(set(seen))

    for bad in (
        {"limit": "0"},
        {"limit": str(limits.READ_PAGE_MAX + 1)},
        {"offset": "-1"},
        {"limit": "x"},
    ):
        resp = requests.get(f"{live.url}{V2}", params=bad, timeout=10)
        assert resp.status_code == 400
    assert (
        requests.get(f"{live.url}/api/v2/silences", params={"limit": "0"}, timeout=10).status_code
        == 400
    )

    page = requests.get(f"{live.url}/", timeout=30)
    assert page.status_code == 200
    assert page.text.count('<tr class="active">') == limits.PAGE_ROWS
    assert 'id="more-alerts"' in page.text


def test_a_catastrophic_regex_filter_answers_within_a_second(live):
    resp = _post(live, V2, [_alert(i, regex="yes", text="a" * 60) for i in range(1000)])
    assert resp.status_code == 200
    params = {"filter": ['alertname=~"(?:.*){18}x"', 'text=~"(a*)*b"']}
    requests.get(f"{live.url}{V2}", params=params, timeout=60)  # warm both workers' caches
    started = time.monotonic()
    resp = requests.get(f"{live.url}{V2}", params=params, timeout=60)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and resp.json() == []
    assert elapsed < 1.0, f"{elapsed:.2f}s"


def test_invalid_regex_filter_is_a_400_naming_the_matcher(live):
    for bad in ('alertname=~"("', 'alertname=~"(a)\\\\1"', 'alertname=~"(?=x)"'):
        resp = requests.get(f"{live.url}{V2}", params={"filter": bad}, timeout=10)
        assert resp.status_code == 400, bad
        assert _message(resp).startswith("filter:") and "alertname" in _message(resp)


def test_matchers_use_go_re2_syntax_anchored_like_alertmanager():
    matcher = parse_matcher('job=~"node|web"')
    assert matcher.matches({"job": "web"}) and not matcher.matches({"job": "webserver"})
    assert parse_matcher('x=~"\\\\pL+"').matches({"x": "héllo"})  # Unicode classes as in Go
    assert parse_matcher('x=~"(?i)abc"').matches({"x": "ABC"})
    with pytest.raises(ValueError, match="invalid regex"):
        parse_matcher('x=~"(a)\\\\1"')  # backreferences: Go's RE2 has none
