"""Alert lifecycle (AlertBook) and delivery to Alertmanager-compatible receivers."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import requests

from rules.alerts import AlertBook, AlertRecord, rfc3339, send_alerts, trace_id
from rules.config import Receiver
from rules.state_file import load_state, save_state
from tests.peers.alert_receiver import alert_receiver
from tests.peers.util import free_port


def rec(name="A", server="s1", start=100.0):
    return AlertRecord(
        {"alertname": name, "server": server, "severity": "warning"},
        {"summary": f"{name} on {server}"},
        start,
    )


def test_lifecycle_keeps_start_resolves_and_forgets_after_retention():
    book = AlertBook(resolved_resend_seconds=60)
    book.sync([rec(start=100)], 100)
    book.sync([rec(start=115)], 115)  # re-sent every cycle, start unchanged
    [r] = book.records.values()
    assert r.starts_at == 100 and r.ends_at is None
    [resolved] = book.sync([], 130)
    assert resolved.ends_at == 130
    payload = book.payload(145, firing_horizon=60)
    assert payload[0]["endsAt"] == rfc3339(130)  # still re-sent, resolved
    book.sync([], 191)
    assert not book.records  # gone after the retention
    book.sync([rec(start=200)], 200)  # fires again: a new alert with a new start
    assert next(iter(book.records.values())).starts_at == 200


def test_each_occurrence_has_one_trace_id_in_its_annotations():
    book = AlertBook(resolved_resend_seconds=60)
    book.sync([rec(start=100)], 100)
    first = book.payload(100, 60)[0]["annotations"]["trace_id"]
    book.sync([rec(start=115)], 115)  # the same occurrence, re-sent: the same id
    assert book.payload(115, 60)[0]["annotations"]["trace_id"] == first
    book.sync([], 130)  # resolved: still the same id
    assert book.payload(131, 60)[0]["annotations"]["trace_id"] == first
    book.sync([], 191)
    book.sync([rec(start=200)], 200)  # fires again: a new occurrence, a new id
    second = book.payload(200, 60)[0]["annotations"]["trace_id"]
    assert second != first and len(second) == 24
    # The router's rule for an alert sent without one gives the same id.
    from alert_router.trace import derive

    assert derive(rec().labels, 200) == second


def test_payload_is_alertmanager_v2():
    book = AlertBook()
    r = rec()
    r.generator_url = "http://rules:9817/api/v1/servers/s1"
    book.sync([r], 100)
    book.add_event(AlertRecord({"alertname": "ServerOnline", "server": "s1"}, {}, 100, 160))
    firing, event = book.payload(130, firing_horizon=60)
    assert firing == {
        "labels": {"alertname": "A", "server": "s1", "severity": "warning"},
        "annotations": {"summary": "A on s1", "trace_id": trace_id(r.labels, 100)},
        "startsAt": "1970-01-01T00:01:40.000Z",
        "endsAt": "1970-01-01T00:03:10.000Z",
        "generatorURL": "http://rules:9817/api/v1/servers/s1",
    }
    assert event["endsAt"] == "1970-01-01T00:02:40.000Z" and "generatorURL" not in event
    book.sync([], 140)  # events are not resolved by the firing set
    assert book.records[next(k for k in book.records if "ServerOnline" in k)].ends_at == 160


def test_state_round_trip_through_the_state_file(tmp_path):
    book = AlertBook()
    book.sync([rec(start=100)], 100)
    path = tmp_path / "s" / "state.json"
    save_state(path, {"alerts": book.get_state()})
    again = AlertBook.from_state(load_state(path)["alerts"])
    again.sync([rec(start=999)], 200)
    assert next(iter(again.records.values())).starts_at == 100


def test_corrupt_state_file_is_set_aside(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    assert load_state(path) == {}
    assert (tmp_path / "state.json.corrupt").read_text() == "{not json"


@pytest.fixture
def receivers():
    with ExitStack() as stack:
        yield lambda status=200: stack.enter_context(alert_receiver(status))


def test_send_to_several_receivers_with_token_and_batches(tmp_path, receivers, monkeypatch):
    monkeypatch.setattr("rules.alerts.BATCH_SIZE", 2)
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    good, failing = receivers(), receivers(500)
    dead = f"http://127.0.0.1:{free_port()}"
    alerts = [{"labels": {"alertname": f"A{i}"}} for i in range(5)]
    result = send_alerts(
        requests.Session(),
        [
            Receiver(good.url, bearer_token_file=token),
            Receiver(failing.url),
            Receiver(dead, timeout_seconds=1),
        ],
        alerts,
    )
    assert result.sent == {good.url: 5, failing.url: 0, dead: 0}
    assert result.failed == {good.url: 0, failing.url: 5, dead: 5}
    assert [len(p[2]) for p in good.posts] == [2, 2, 1]
    assert all(p[0] == "/api/v2/alerts" for p in good.posts)
    assert good.posts[0][1]["Authorization"] == "Bearer t0k3n"
    assert "Authorization" not in failing.posts[0][1]
    assert len(failing.posts) == 1  # gives up on that receiver for this cycle
    assert "HTTP 500" in result.errors[failing.url]
    assert "ConnectionError" in result.errors[dead]
    assert all("t0k3n" not in e for e in result.errors.values())
