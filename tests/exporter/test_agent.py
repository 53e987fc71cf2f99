"""The push agent: request shape, retries and backoff, rejections, config; then end to end.

A loopback HTTP server stands in for the exporter where a test scripts failures
(500, 429, 401); the last tests push to the real exporter's endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter import stacksense_cli
from exporter.agent import cli, delivery
from exporter.agent.config import AgentConfig, AgentConfigError, load_config
from exporter.agent.delivery import Outcome, run
from exporter.push import parse_heartbeat
from stacksense_common.secret import Secret
from tests.exporter.harness import running_exporter, samples
from tests.peers.http_receiver import HttpReceiver, Reply
from tests.peers.util import free_port

TOKEN = "tok-3f9a1c7e55d2b8a0-secret"


def answer(status: int, headers: dict[str, str] | None = None) -> Reply:
    """A scripted answer with a short text body (the agent quotes it in its messages)."""
    return Reply(status, f"status {status}\n", headers or {})


@pytest.fixture
def fake() -> Iterator[HttpReceiver]:
    """The exporter's push endpoint: records every request, answers 204 unless scripted."""
    with HttpReceiver(success=Reply(204, "")) as receiver:
        yield receiver


def config(url: str, **overrides: Any) -> AgentConfig:
    return AgentConfig(**{"url": url, "server": "web-1", "token": Secret(TOKEN), **overrides})


class Sleeps:
    """Records the delays the loop asks for and stops it after `limit` of them."""

    def __init__(self, stop: threading.Event, limit: int) -> None:
        self.stop, self.limit = stop, limit
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) >= self.limit:
            self.stop.set()


METRICS = {
    "cpu_usage_ratio": 0.25,
    "memory_usage_ratio": 0.5,
    "swap_usage_ratio": 0.0,
    "load1": 0.7,
    "boot_time_seconds": 1.7e9,
    "filesystem_usage_ratio": {"/": 0.4},
}


def test_once_sends_one_well_formed_heartbeat(
    fake: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKSENSE_URL", fake.url + "/")
    monkeypatch.setenv("STACKSENSE_SERVER", "web-1")
    monkeypatch.setenv("STACKSENSE_TOKEN", TOKEN)
    assert cli.main(["--once"]) == 0
    [req] = fake.requests()
    assert req.path == "/api/v1/heartbeat/web-1"
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.headers["Content-Type"] == "application/json"
    body = json.loads(req.body)
    assert list(body) == ["metrics", "agent"]
    assert body["agent"]["version"] and body["agent"]["facts"]["os"] == "Linux"
    # The exporter's own validator accepts what this host really measured.
    metrics = parse_heartbeat(req.body)
    assert metrics is not None
    for name in ("cpu_usage_ratio", "memory_usage_ratio", "swap_usage_ratio"):
        assert 0.0 <= metrics[name] <= 1.0
    assert 0 < metrics["boot_time_seconds"] < time.time()
    assert metrics["load1"] >= 0
    assert "/" in metrics["filesystem_usage_ratio"]
    assert 0 < metrics["filesystem_usage_ratio"]["/"] <= 1


def test_a_5xx_is_retried_with_backoff_then_delivered(fake: HttpReceiver) -> None:
    fake.reply_with(answer(500), answer(503))
    stop = threading.Event()
    sleeps = Sleeps(stop, limit=10)
    assert run(config(fake.url), stop, collect=lambda: METRICS, sleep=sleeps, once=True)
    assert len(fake.requests()) == 3
    # Attempt 1 waits 0.5-1 s, attempt 2 waits 1-2 s (equal jitter on a doubling ceiling).
    assert 0.5 <= sleeps.delays[0] <= 1.0 and 1.0 <= sleeps.delays[1] <= 2.0
    assert len(sleeps.delays) == 2


def test_retry_after_of_a_429_is_honoured(fake: HttpReceiver) -> None:
    fake.reply_with(answer(429, {"Retry-After": "7"}))
    stop = threading.Event()
    sleeps = Sleeps(stop, limit=2)
    run(config(fake.url, interval_seconds=30), stop, collect=lambda: METRICS, sleep=sleeps)
    assert sleeps.delays == [7.0, 30.0]  # Retry-After, then back to the normal interval
    assert len(fake.requests()) == 2


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    delay = delivery._retry_after(format_datetime(when, usegmt=True))
    assert delay is not None and 115 <= delay <= 121
    assert delivery._retry_after("soon") is None
    assert delivery._retry_after("999999") == delivery.MAX_RETRY_AFTER_SECONDS


def test_401_is_not_retried_early_and_the_token_never_shows(
    fake: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.reply_with(answer(401), answer(401))
    stop = threading.Event()
    sleeps = Sleeps(stop, limit=2)
    run(config(fake.url, interval_seconds=30), stop, collect=lambda: METRICS, sleep=sleeps)
    assert sleeps.delays == [30.0, 30.0]  # the normal interval, no backoff hammering
    assert "rejected the token for server 'web-1'" in caplog.text
    # --once gives up at once on a rejection and exits 1.
    fake.reply_with(answer(401))
    before = len(fake.requests())
    monkeypatch.setenv("STACKSENSE_TOKEN", TOKEN)
    assert cli.main(["--once", "--url", fake.url, "--server", "web-1"]) == 1
    assert len(fake.requests()) == before + 1
    out, err = capsys.readouterr()
    assert TOKEN not in caplog.text + out + err


@pytest.mark.parametrize(
    "status, hint",
    [
        (404, "server 'web-1' is not in the exporter's inventory"),
        (400, "rejected the heartbeat body (400 status 400)"),
    ],
)
def test_other_rejections_name_the_problem(fake: HttpReceiver, status: int, hint: str) -> None:
    fake.reply_with(answer(status))
    outcome = delivery.send(requests.Session(), config(fake.url), METRICS)
    assert outcome == Outcome(False, retry=False, message=outcome.message)
    assert hint in outcome.message


def test_an_unreachable_exporter_is_retried_and_reported_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://user:pa55@127.0.0.1:{free_port()}"  # nothing listens there
    stop = threading.Event()
    sleeps = Sleeps(stop, limit=10)
    ok = run(
        config(url, max_backoff_seconds=2), stop, collect=lambda: METRICS, sleep=sleeps, once=True
    )
    assert not ok and len(sleeps.delays) == delivery.ONCE_ATTEMPTS - 1
    assert all(d <= 2.0 for d in sleeps.delays)
    assert "connection to http://<redacted>@127.0.0.1" in caplog.text
    assert TOKEN not in caplog.text and "pa55" not in caplog.text


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    ceilings = [delivery.backoff(n, 60.0, rand=lambda: 1.0) for n in range(1, 10)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert [delivery.backoff(n, 60.0, rand=lambda: 0.0) for n in (1, 7)] == [0.5, 30.0]


# ---------------------------------------------------------------- configuration


def test_config_file_env_and_flags_layer_in_that_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    file = tmp_path / "agent.yml"
    file.write_text(
        yaml.safe_dump(
            {
                "url": "http://file:9816",
                "server": "from-file",
                "token_file": str(token_file),
                "interval_seconds": 15,
            }
        )
    )
    cfg = load_config(file, {}, {})
    assert (cfg.url, cfg.server, cfg.token.reveal(), cfg.interval_seconds) == (
        "http://file:9816",
        "from-file",
        TOKEN,
        15.0,
    )
    env = {"STACKSENSE_SERVER": "from-env", "STACKSENSE_INTERVAL": "5"}
    cfg = load_config(file, env, {})
    assert (cfg.server, cfg.interval_seconds) == ("from-env", 5.0)
    cfg = load_config(file, env, {"server": "from-flag", "interval_seconds": None})
    assert (cfg.server, cfg.interval_seconds) == ("from-flag", 5.0)
    assert TOKEN not in repr(cfg)
    # The environment's token replaces the file's token_file.
    assert load_config(file, {"STACKSENSE_TOKEN": "other"}, {}).token.reveal() == "other"


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"url": "http://x", "server": "a", "token": "t", "intervall": 3},
            "intervall: unknown key",
        ),
        ({"url": "ftp://x", "server": "a", "token": "t"}, "url: expected http(s)"),
        ({"url": "http://x", "server": "a"}, "token: required"),
        ({"url": "http://x", "token": "t"}, "server: required"),
        (
            {"url": "http://x", "server": "a", "token": "t", "interval_seconds": "fast"},
            "interval_seconds: expected a number",
        ),
        (
            {"url": "http://x", "server": "a", "token": "t", "interval_seconds": 0},
            "interval_seconds: must be between",
        ),
        (
            {"url": "http://x", "server": "a", "token_file": "/nonexistent/tok"},
            "token_file: cannot read /nonexistent/tok",
        ),
    ],
)
def test_bad_config_names_the_setting(
    tmp_path: Path, content: dict[str, Any], message: str
) -> None:
    file = tmp_path / "agent.yml"
    file.write_text(yaml.safe_dump(content))
    with pytest.raises(AgentConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(file, {}, {})


def test_bad_config_exits_2_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("STACKSENSE_URL", "STACKSENSE_SERVER", "STACKSENSE_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["--once", "--server", "x"]) == 2
    assert "url: required" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end, real exporter


@pytest.fixture
def exporter_with_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SS_TEST_PUSH_TOKEN", TOKEN)
    inventory = tmp_path / "servers.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "known_hosts": str(tmp_path / "known_hosts"),
                "credentials": {"default": {"key_file": str(tmp_path / "unused_key")}},
                "servers": [
                    {
                        "name": "laptop-7",
                        "host": "192.0.2.7",
                        "push_token_env": "SS_TEST_PUSH_TOKEN",
                    }
                ],
            }
        )
    )
    with running_exporter(inventory) as exporter:
        yield exporter.url


def test_agent_heartbeat_reaches_the_real_exporter(
    exporter_with_push: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKSENSE_TOKEN", TOKEN)
    before = time.time()
    # Through the `stacksense agent` front door, as an operator would run it.
    assert (
        stacksense_cli.main(
            ["agent", "--once", "--url", exporter_with_push, "--server", "laptop-7"]
        )
        == 0
    )
    values = samples(requests.get(f"{exporter_with_push}/metrics", timeout=10).text)
    beat = values['stacksense_last_heartbeat_timestamp_seconds{server="laptop-7",source="push"}']
    assert before - 1 <= beat <= time.time() + 1
    assert values['stacksense_heartbeat_age_seconds{server="laptop-7"}'] < 30
    # The agent's metrics came along and were accepted.
    memory = [
        v
        for k, v in values.items()
        if k.startswith("stacksense_memory_usage_ratio") and "laptop-7" in k
    ]
    assert len(memory) == 1 and 0 < memory[0] < 1


def test_wrong_token_against_the_real_exporter_fails_without_retries(
    exporter_with_push: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STACKSENSE_TOKEN", "not-the-token")
    caplog.set_level(logging.INFO)
    assert cli.main(["--once", "--url", exporter_with_push, "--server", "laptop-7"]) == 1
    assert "rejected the token" in caplog.text and "not-the-token" not in caplog.text
    values = samples(requests.get(f"{exporter_with_push}/metrics", timeout=10).text)
    assert not any("laptop-7" in key and "last_heartbeat" in key for key in values)
    assert values['stacksense_heartbeat_age_seconds{server="laptop-7"}'] == float("inf")
