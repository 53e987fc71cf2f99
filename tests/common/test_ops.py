"""The operations endpoints' one meaning: answers, the write rule, the reload gauges."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stacksense_common.ops import (
    FROM_A_PAGE,
    LOOPBACK_ONLY,
    NEEDS_TOKEN,
    Ops,
    ReloadGauges,
    bearer_token_valid,
    is_loopback,
    tokens_from_file,
    write_refusal,
)


class BadConfig(Exception):
    pass


def make_ops(
    *,
    ready: str | None = None,
    error: Exception | None = None,
    tokens: tuple[str, ...] | None = ("s3cret",),
) -> tuple[Ops, list[int]]:
    calls: list[int] = []

    def reload() -> None:
        calls.append(1)
        if error is not None:
            raise error

    return Ops(
        "widget",
        ready=lambda: ready,
        reload=reload,
        config_errors=(BadConfig,),
        write_tokens=lambda: tokens,
    ), calls


def test_healthy_and_ready_answer_like_prometheus() -> None:
    ops, _ = make_ops()
    assert (ops.healthy().status, ops.healthy().text) == (200, "StackSense widget is Healthy.\n")
    assert (ops.ready().status, ops.ready().text) == (200, "StackSense widget is Ready.\n")
    not_ready, _ = make_ops(ready="no cycle completed yet")
    answer = not_ready.ready()
    assert answer.status == 503 and not answer.ok
    assert answer.text == "StackSense widget is not ready: no cycle completed yet\n"
    assert not_ready.healthy().status == 200  # serving is not the same as ready


def test_ops_paths_take_reads_only_and_other_paths_are_not_ops() -> None:
    ops, _ = make_ops()
    assert ops.handle("HEAD", "/-/healthy", None, "10.0.0.1") == ops.healthy()
    refused = ops.handle("POST", "/-/ready", None, "127.0.0.1")
    assert refused is not None and refused.status == 405
    assert ("Allow", "GET, HEAD") in refused.headers
    assert ops.handle("GET", "/metrics", None, "127.0.0.1") is None


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_reload_is_post_or_put_only(method: str) -> None:
    ops, calls = make_ops()
    answer = ops.reload(method, "Bearer s3cret", "127.0.0.1")
    assert answer.status == 405 and answer.text == "Only POST or PUT requests allowed\n"
    assert ("Allow", "POST, PUT") in answer.headers and not calls


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_reload_with_the_token_succeeds(method: str) -> None:
    ops, calls = make_ops()
    answer = ops.reload(method, "Bearer s3cret", "192.0.2.7")
    assert answer.status == 200 and calls == [1]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        "Basic s3cret",
        "bearer s3cret",
        "Bearer s3cretX",
    ],
)
def test_reload_without_a_valid_token_is_refused_even_from_loopback(header: str | None) -> None:
    ops, calls = make_ops()
    answer = ops.reload("POST", header, "127.0.0.1")
    assert answer.status == 401 and answer.text == NEEDS_TOKEN + "\n"
    assert ("WWW-Authenticate", "Bearer") in answer.headers
    assert "s3cret" not in answer.text and not calls


def test_without_a_configured_token_only_loopback_may_reload() -> None:
    ops, calls = make_ops(tokens=None)
    assert ops.reload("POST", None, "127.0.0.1").status == 200
    assert ops.reload("POST", None, "::1").status == 200
    assert ops.reload("POST", None, "::ffff:127.0.0.1").status == 200
    remote = ops.reload("POST", "Bearer anything", "10.0.0.5")
    assert remote.status == 401 and remote.text == LOOPBACK_ONLY + "\n"
    assert len(calls) == 3


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9816"])
def test_without_a_configured_token_a_web_page_may_not_reload(origin: str) -> None:
    """A page in a browser on the same machine reaches loopback too; browsers say so with
    Origin on every cross-site POST (form posts included), scripts never send one."""
    ops, calls = make_ops(tokens=None)
    answer = ops.reload("POST", None, "127.0.0.1", origin)
    assert answer.status == 401 and answer.text == FROM_A_PAGE + "\n" and not calls
    with_token, calls = make_ops()
    assert with_token.reload("POST", "Bearer s3cret", "127.0.0.1", origin).status == 200


def test_a_configured_but_empty_token_source_refuses_everyone() -> None:
    ops, calls = make_ops(tokens=())
    assert ops.reload("POST", None, "127.0.0.1").status == 401
    assert ops.reload("POST", "Bearer ", "127.0.0.1").status == 401
    assert not calls


def test_a_config_error_is_a_500_naming_it_in_one_line() -> None:
    ops, _ = make_ops(error=BadConfig("rules.yml: interval:\n  expected a duration"))
    answer = ops.reload("POST", "Bearer s3cret", "127.0.0.1")
    assert answer.status == 500
    assert answer.text == "failed to reload config: rules.yml: interval: expected a duration\n"
    assert answer.message == "failed to reload config: rules.yml: interval: expected a duration"


def test_any_other_exception_is_a_bug_and_propagates() -> None:
    ops, _ = make_ops(error=ZeroDivisionError("oops"))
    with pytest.raises(ZeroDivisionError):
        ops.reload("POST", "Bearer s3cret", "127.0.0.1")


def test_bearer_tokens_and_loopback() -> None:
    assert bearer_token_valid("Bearer b", ("a", "b"))
    assert bearer_token_valid("Bearer  b ", ("b",))
    assert not bearer_token_valid("Bearer ", ("", "b"))  # an empty token never matches
    assert is_loopback("127.0.0.9") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost")
    assert write_refusal(None, None, "fe80::1%eth0", None) == LOOPBACK_ONLY
    assert write_refusal(None, None, "::1", None) is None


def test_token_files_are_read_each_time(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    assert tokens_from_file(None) is None
    assert tokens_from_file(path) == ()  # configured but missing: refuse, never open
    path.write_text("# rotated monthly\nold-one\n\n  new-one  \n")
    assert tokens_from_file(path) == ("old-one", "new-one")
    path.write_bytes(b"\xff\xfe")
    assert tokens_from_file(path) == ()


def test_reload_gauges_follow_the_naming_scheme() -> None:
    registry = CollectorRegistry()
    gauges = ReloadGauges("widget", registry)
    gauges.succeeded(now=1234.5)
    text = generate_latest(registry).decode()
    assert "stacksense_widget_config_last_reload_successful 1.0" in text
    assert "stacksense_widget_config_last_reload_success_timestamp_seconds 1234.5" in text
    gauges.failed()
    text = generate_latest(registry).decode()
    assert "stacksense_widget_config_last_reload_successful 0.0" in text
    assert "stacksense_widget_config_last_reload_success_timestamp_seconds 1234.5" in text
