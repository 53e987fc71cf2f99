"""The Prometheus client: envelope errors, retries, escaping — on a fake session and a real
Prometheus."""

from __future__ import annotations

import json

import pytest
import requests

from rules.promapi import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailable,
    escape_label_value,
    selector,
)
from tests.peers.prometheus import prometheus


class FakeSession(requests.Session):
    """Answers from a script: each item is (status, body) or an exception to raise."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.calls: list[tuple[str, dict]] = []

    def post(self, url, data=None, **kwargs):  # type: ignore[override]
        self.calls.append((url, dict(data or {})))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body = item
        resp = requests.Response()
        resp.status_code = status
        resp._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
        return resp


def ok_vector(*samples):
    return (
        200,
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": labels, "value": [1000.0, value]} for labels, value in samples
                ],
            },
        },
    )


def client(session, **kw):
    sleeps: list[float] = []
    c = PrometheusClient("http://prom:9090/", session=session, sleep=sleeps.append, **kw)
    return c, sleeps


def test_error_envelope_raises_with_prometheus_message_and_is_not_retried():
    session = FakeSession(
        [
            (
                400,
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "1:5: parse error: unexpected end of input",
                },
            )
        ]
    )
    c, sleeps = client(session)
    with pytest.raises(PrometheusQueryError) as err:
        c.query("sum(")
    assert err.value.error_type == "bad_data"
    assert "unexpected end of input" in str(err.value) and "sum(" in str(err.value)
    assert len(session.calls) == 1 and sleeps == [] and c.errors == 1


def test_error_envelope_with_status_200_is_still_an_error():
    session = FakeSession(
        [
            (
                200,
                {
                    "status": "error",
                    "errorType": "execution",
                    "error": "query processing would load too many samples",
                },
            )
        ]
    )
    with pytest.raises(PrometheusQueryError, match="too many samples"):
        client(session)[0].query("up")


def test_transient_failures_are_retried_with_backoff():
    session = FakeSession(
        [
            requests.ConnectionError("refused"),
            (503, {"status": "error", "errorType": "unavailable", "error": "x"}),
            ok_vector(({"server": "a"}, "0.5")),
        ]
    )
    c, sleeps = client(session, retries=2, backoff=0.1, rand=lambda: 1.0)  # the jitter's top
    result = c.query("up", time=1000)
    assert result[0].labels == {"server": "a"} and result[0].value == 0.5
    assert sleeps == [0.1, 0.2]
    assert session.calls[0] == (
        "http://prom:9090/api/v1/query",
        {"query": "up", "time": "1000.000"},
    )
    assert c.queries == 1 and c.errors == 0


def test_gives_up_after_retries_with_a_clear_error():
    session = FakeSession([requests.ConnectTimeout("t")] * 3)
    c, sleeps = client(session, retries=2)
    with pytest.raises(PrometheusUnavailable, match="after 3 attempts: ConnectTimeout"):
        c.query("up")
    assert len(sleeps) == 2 and c.errors == 1


def test_non_json_answer_is_an_error_naming_the_status():
    session = FakeSession([(404, b"<html>not found</html>")])
    with pytest.raises(PrometheusUnavailable, match="HTTP 404"):
        client(session)[0].query("up")


def test_scalar_and_special_values():
    session = FakeSession(
        [(200, {"status": "success", "data": {"resultType": "scalar", "result": [5.0, "+Inf"]}})]
    )
    [sample] = client(session)[0].query("scalar(up)")
    assert sample.labels == {} and sample.value == float("inf")


def test_escape_label_value_and_selector():
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert selector("up", job='we"ird') == 'up{job="we\\"ird"}'
    with pytest.raises(ValueError, match="label name"):
        selector("up", **{"bad-name": "x"})
    with pytest.raises(ValueError, match="metric name"):
        selector("up{}")
    with pytest.raises(ValueError, match="metric name"):  # `$` would accept a final newline
        selector("up\n")
    with pytest.raises(ValueError, match="label name"):
        selector("up", **{"job\n": "x"})


def test_against_a_real_prometheus(tmp_path):
    with prometheus(tmp_path) as p:
        c = PrometheusClient(p.url)
        with pytest.raises(PrometheusQueryError) as err:
            c.query("sum(")
        assert err.value.error_type == "bad_data" and "parse error" in err.value.message
        # A hostile label value is matched literally, not interpreted as PromQL.
        hostile = 'x"} or vector(1) or up{job="'
        assert c.query(selector("up", job=hostile)) == []
        [s] = c.query(f'label_replace(vector(1), "v", "{escape_label_value(hostile)}", "", "")')
        assert s.labels["v"] == hostile
        series = c.query_range("vector(2)", 1000, 1060, 30)
        assert series[0].points == [(1000.0, 2.0), (1030.0, 2.0), (1060.0, 2.0)]
        with pytest.raises(PrometheusQueryError, match="range vector"):
            c.query_matrix("vector(1)")


def test_bearer_token_is_sent_but_never_in_errors(caplog):
    session = FakeSession([requests.ConnectionError("refused")] * 2)
    sent_headers = []
    original = session.post

    def post(url, data=None, **kwargs):
        sent_headers.append(kwargs.get("headers"))
        return original(url, data=data, **kwargs)

    session.post = post  # type: ignore[method-assign]
    c, _ = client(session, retries=1, bearer_token="pr0m-s3cret")
    with caplog.at_level("DEBUG"), pytest.raises(PrometheusUnavailable) as err:
        c.query("up")
    assert sent_headers[0] == {"Authorization": "Bearer pr0m-s3cret"}
    assert "pr0m-s3cret" not in str(err.value) and "pr0m-s3cret" not in caplog.text
