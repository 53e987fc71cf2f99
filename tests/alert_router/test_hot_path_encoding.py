"""The dispatcher's hand-written encodings equal the plain ones they replace, byte for byte:
fingerprints (Alertmanager's FNV-1a), derived trace ids, trace details and the cached
annotation JSON."""

from __future__ import annotations

import hashlib
import json
import random
import time

import pytest

from alert_router.fingerprint import fingerprint
from alert_router.store_parts import alerts as stored_alerts
from alert_router.trace import derive, row
from tests.alert_router.harness import Harness

CHARS = 'ab_"\\\n\t\x00\x7f/<>é\u2028\U0001f600'


def plain_fingerprint(labels: dict[str, str]) -> str:
    data = b"".join(
        b"%s\xff%s\xff" % (name.encode(), labels[name].encode()) for name in sorted(labels)
    )
    h = 14695981039346656037
    for byte in data:
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def plain_derive(labels: dict[str, str], starts_at: float) -> str:
    key = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    digest = hashlib.sha256(f"{key}|{starts_at:.3f}".encode()).hexdigest()[:16]
    return f"{int(starts_at):08x}{digest}"


def random_labels(rnd: random.Random) -> dict[str, str]:
    return {
        "".join(rnd.choice("abcxyz_") for _ in range(rnd.randint(1, 9))): "".join(
            rnd.choice(CHARS) for _ in range(rnd.randint(0, 13))
        )
        for _ in range(rnd.randint(1, 7))
    }


def test_fingerprints_trace_ids_and_details_match_the_plain_encodings() -> None:
    rnd = random.Random(10)
    for i in range(2000):
        labels = random_labels(rnd)
        assert fingerprint(labels) == plain_fingerprint(labels), labels
        assert derive(labels, 1.7e9 + i / 1000) == plain_derive(labels, 1.7e9 + i / 1000)
        assert row("t", 1.0, "grouped", "ok", "fp", **labels)[5] == json.dumps(
            labels, sort_keys=True
        )
    mixed = {"receiver": "r", "attempt": 2, "retry_at": None, "error": "é"}
    assert row("t", 1.0, "delivery", "retrying", "fp", **mixed)[5] == json.dumps(
        mixed, sort_keys=True
    )


def test_every_length_remainder_and_unencodable_values() -> None:
    for n in range(12):  # every remainder of the fingerprint's four-byte steps
        labels = {"a": "x" * n}
        assert fingerprint(labels) == plain_fingerprint(labels)
    assert fingerprint({"a": "\ud800"}) != fingerprint({"a": "\ud801"})  # never raises


def test_cached_annotation_json_is_json_dumps_in_every_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stored_alerts, "_ANNOTATIONS_JSON_CACHE", 50)
    rnd = random.Random(11)
    maps = [random_labels(rnd) for _ in range(200)]
    for mapping in maps * 2:  # the second pass is served from the cache
        assert stored_alerts.annotations_json(mapping) == json.dumps(mapping)
    assert len(stored_alerts._annotations_json) <= 50  # bounded
    # Same items, another order: another document, as json.dumps writes it.
    assert stored_alerts.annotations_json({"b": "1", "a": "2"}) == '{"b": "1", "a": "2"}'
    assert stored_alerts.annotations_json({"a": "2", "b": "1"}) == '{"a": "2", "b": "1"}'
    # A large set is encoded every time: the cache's memory stays bounded.
    stored_alerts._annotations_json.clear()
    large = {"description": "x" * 2000}
    assert stored_alerts.annotations_json(large) == json.dumps(large)
    assert not stored_alerts._annotations_json
    # A value that is not a string is encoded, never cached (and never an error).
    assert stored_alerts.annotations_json({"n": [1]}) == '{"n": [1]}'  # type: ignore[dict-item]


def test_fingerprint_cache_keeps_only_small_label_sets(harness: Harness) -> None:
    small = {"alertname": "Small", "server": "web-1"}
    large = {"alertname": "Large", "description": "x" * 1000}
    assert harness.post([{"labels": small}, {"labels": large}]).status_code == 200
    harness.step(time.time())
    dispatcher = harness.state.dispatcher
    assert dispatcher is not None
    cached = dispatcher._fingerprints
    assert cached == {tuple(small.items()): fingerprint(small)}  # the large set is not kept
    stored = {a.fingerprint for a in harness.state.store.all_alerts()}
    assert stored == {fingerprint(small), fingerprint(large)}  # both merged alike
