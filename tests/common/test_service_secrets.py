"""The services' secrets are the shared Secret: the router's bearer tokens, the agent's
push token and the onboarding password never show in repr, logs or errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from alert_router.config import parse_config as parse_router
from exporter.agent.config import AgentConfigError
from exporter.agent.config import load_config as load_agent
from exporter.onboarding.onboard import OnboardError, OnboardRequest, onboard, read_password
from stacksense_common.ops import bearer_token_valid
from stacksense_common.secret import Secret
from tests.alert_router.harness import base_config

VALUE = "s3cr3t-value-9f1c"


def shows_nowhere(obj: object, caplog: pytest.LogCaptureFixture) -> None:
    """`obj` turned into text every usual way, and logged, never carries VALUE."""
    with caplog.at_level(logging.INFO):
        logging.getLogger("test.secrets").info("config %s %r", obj, obj)
    for text in (repr(obj), str(obj), f"{obj}", caplog.text):
        assert VALUE not in text


def test_router_tokens_are_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROUTER_TOKENS", f"{VALUE}, other")
    raw = base_config(tmp_path, auth={"tokens_env": "ROUTER_TOKENS"})
    config = parse_router(raw)
    assert all(isinstance(t, Secret) for t in config.auth.tokens)
    assert bearer_token_valid(f"Bearer {VALUE}", config.auth.tokens)
    assert not bearer_token_valid("Bearer nope", config.auth.tokens)
    shows_nowhere(config.auth, caplog)
    shows_nowhere(config, caplog)
    with pytest.raises(TypeError):
        json.dumps(list(config.auth.tokens))


def test_agent_token_is_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "STACKSENSE_URL": "http://exporter:9816",
        "STACKSENSE_SERVER": "web-1",
        "STACKSENSE_TOKEN": VALUE,
    }
    config = load_agent(None, env, {})
    assert isinstance(config.token, Secret) and config.token.reveal() == VALUE
    shows_nowhere(config, caplog)
    # A token the agent refuses is still not echoed in the error.
    with pytest.raises(AgentConfigError) as err:
        load_agent(None, {**env, "STACKSENSE_TOKEN": f"{VALUE} x"}, {})
    assert VALUE not in str(err.value)


def test_onboarding_password_is_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ONBOARD_PASSWORD", VALUE)
    password = read_password("ONBOARD_PASSWORD", None, False)
    assert isinstance(password, Secret) and password.reveal() == VALUE
    (tmp_path / "pw").write_text(VALUE + "\n")
    assert read_password(None, tmp_path / "pw", False).reveal() == VALUE
    request = OnboardRequest(
        name="web 1",
        host="192.0.2.1",
        password=password,
        inventory=tmp_path / "servers.yml",
        timeout_seconds=0.5,
    )
    shows_nowhere(request, caplog)
    with pytest.raises(OnboardError) as err:  # refused before any connection
        onboard(request)
    assert VALUE not in str(err.value) and VALUE not in repr(err.value)
