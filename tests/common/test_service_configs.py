"""The services read their configs through the shared kit: one error type, one duration
grammar, unknown keys listed with the allowed ones, one Secret, one Retry-After."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import alert_router.errors
import exporter.config
import rules.config
from alert_router.config import parse_config as parse_router
from alert_router.notify import http as notify_http
from alert_router.notify.base import ReceiverConfigError
from alert_router.notify.config import parse_duration as receiver_duration
from exporter.agent import delivery as agent_delivery
from exporter.agent.config import AgentConfigError
from exporter.checks_config import ChecksError
from rules.config import EngineConfig
from rules.config import parse_config as parse_rules
from stacksense_common import retry_after
from stacksense_common.config import ConfigError
from stacksense_common.secret import Secret
from tests.alert_router.harness import base_config


def test_every_service_raises_the_one_config_error() -> None:
    assert exporter.config.ConfigError is ConfigError
    assert rules.config.ConfigError is ConfigError
    assert alert_router.errors.ConfigError is ConfigError
    assert issubclass(ChecksError, ConfigError)
    assert issubclass(ReceiverConfigError, ConfigError)
    assert issubclass(AgentConfigError, ConfigError)


# ---------------------------------------------------------------- rules: the dataclass loader


def test_rules_defaults_are_written_once() -> None:
    assert parse_rules({}) == EngineConfig() == parse_rules(None)


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"status": {"offline_afer": "1m"}},
            "status.offline_afer: unknown key (allowed: grace_offline_after, grace_period, "
            "offline_after, outage_threshold, pending_timeout, pipeline_alert_after)",
        ),
        ({"interval": "1.5s"}, "interval: expected a duration, got '1.5s'; the grammar: [0-9]+"),
        ({"interval": 30}, "interval: expected a duration, got '30'"),
        (
            {"receivers": [{"url": "http://a", "timeout": "2s1m"}]},
            "receivers[0].timeout: expected a duration, got '2s1m'",
        ),
        ({"prometheus": {"retries": "2"}}, "prometheus.retries: expected an integer, got '2'"),
        (
            {"anomalies": {"detector": {"alpah": 1}}},
            "anomalies.detector.alpah: unknown key (allowed:",
        ),
        ({"receivers": [{"url": "ftp://a"}]}, "receivers[0].url: expected an http"),
    ],
)
def test_rules_errors_name_the_path(doc: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rules(doc)
    assert str(err.value).startswith(message)


def test_rules_take_prometheus_durations(tmp_path: Path) -> None:
    c = parse_rules(
        {
            "interval": "500ms",
            "resolved_resend": "1d",
            "status": {"offline_after": "1h30m", "grace_offline_after": "1w"},
            "receivers": [{"url": "http://r/", "timeout": "1s500ms", "bearer_token_file": "t"}],
        },
        base_dir=tmp_path,
    )
    assert (c.interval_seconds, c.resolved_resend_seconds) == (0.5, 86400)
    assert (c.offline_after_seconds, c.grace_offline_after_seconds) == (5400, 7 * 86400)
    [r] = c.receivers
    assert (r.url, r.timeout_seconds, r.bearer_token_file) == ("http://r", 1.5, tmp_path / "t")


# ---------------------------------------------------------------- router


def test_router_unknown_keys_list_the_allowed_ones(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, route={"receiver": "default", "group_wiat": "1m"})
    with pytest.raises(
        ConfigError,
        match=r"^route\.group_wiat: unknown key \(allowed: "
        r"continue, diagnostics, group_by, ",
    ):
        parse_router(cfg)
    cfg = base_config(tmp_path, route={"receiver": "default"}, delivery={"workres": 2})
    with pytest.raises(
        ConfigError,
        match=r"^delivery\.workres: unknown key \(allowed: "
        r"give_up_after, initial_backoff, lease, ",
    ):
        parse_router(cfg)


def test_router_delivery_is_read_by_the_loader(tmp_path: Path) -> None:
    cfg = parse_router(
        base_config(
            tmp_path,
            route={"receiver": "default"},
            delivery={"initial_backoff": "500ms", "max_backoff": "1d"},
        )
    )
    assert (cfg.delivery.initial_backoff, cfg.delivery.max_backoff) == (0.5, 86400)
    assert cfg.delivery.workers == 4  # the dataclass's default
    for delivery, message in [
        ({"workers": 0}, "delivery.workers: must be an integer from 1 to 64"),
        ({"initial_backoff": "1m", "max_backoff": "1s"}, "delivery.max_backoff: must not be"),
        ({"lease": "1.5s"}, "delivery.lease: expected a duration, got '1.5s'"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_router(base_config(tmp_path, route={"receiver": "default"}, delivery=delivery))
        assert str(err.value).startswith(message)


def test_receiver_durations_are_the_same_grammar() -> None:
    assert receiver_duration("1d", path="p") == 86400  # refused before the shared grammar
    with pytest.raises(ValueError, match=r"^p: expected a duration, got '1\.5s'"):
        receiver_duration("1.5s", path="p")  # accepted before
    with pytest.raises(ValueError, match=r"^p: must be longer than 0"):
        receiver_duration("0s", path="p")


# ---------------------------------------------------------------- exporter


def test_exporter_secrets_and_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H2_TEST_PASSWORD", "pw-value")
    creds = {"default": {"password_env": "H2_TEST_PASSWORD"}}
    inv = exporter.config.parse_inventory(
        {"credentials": creds, "servers": [{"name": "a", "host": "h"}]}, base=tmp_path
    )
    password = inv.credentials["default"].password
    assert isinstance(password, Secret) and password.reveal() == "pw-value"
    assert "pw-value" not in repr(inv)
    with pytest.raises(ConfigError, match=r"^servers\[1\]\.prot: unknown key \(allowed: .*port"):
        exporter.config.parse_inventory(
            {
                "credentials": creds,
                "servers": [{"name": "a", "host": "h"}, {"name": "b", "host": "h", "prot": 2}],
            },
            base=tmp_path,
        )


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize("header", ["7", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "1.5", None])
def test_one_retry_after_parser(header: str | None) -> None:
    shared = retry_after.parse(header)
    assert notify_http.retry_after_seconds(header) == shared
    assert agent_delivery._retry_after(header) == shared
