"""Config validation: every error names its key path; defaults are Alertmanager's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alert_router.config import RouterConfig, load_config, parse_config
from alert_router.errors import ConfigError
from tests.alert_router.harness import base_config


def test_defaults_are_alertmanagers(tmp_path):
    cfg = parse_config(base_config(tmp_path, route={"receiver": "default"}))
    assert (cfg.route.group_wait, cfg.route.group_interval, cfg.route.repeat_interval) == (
        30,
        300,
        4 * 3600,
    )
    assert cfg.resolve_timeout == 300
    assert cfg.storage_synchronous == "NORMAL"
    # The shipped inhibition: ServerOffline mutes the server's other alerts.
    assert [str(m) for m in cfg.inhibit_rules[0].source] == ['alertname="ServerOffline"']
    assert cfg.inhibit_rules[0].equal == ("server",)


def test_defaults_are_written_once(tmp_path):
    """A RouterConfig built directly has the defaults of a config file that sets nothing."""
    read = parse_config(base_config(tmp_path))
    built = RouterConfig(
        route=read.route,
        receivers=read.receivers,
        inhibit_rules=read.inhibit_rules,
        global_config=read.global_config,
    )
    # An Alertmanager webhook re-sends a firing alert every repeat_interval (4h by default).
    assert built.webhook_resolve_timeout == read.webhook_resolve_timeout == 4 * 3600 + 600
    for name in (
        "resolve_timeout",
        "external_url",
        "max_request_bytes",
        "delivery",
        "incident_auto_close",
        "incident_open_for",
        "storage_synchronous",
    ):
        assert getattr(built, name) == getattr(read, name), name


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda c: c.update(colour="red"), "colour"),
        (
            lambda c: c.update(**{"global": {"smtp_smarthost": "x:25", "resolve_timout": "5m"}}),
            "global.resolve_timout",
        ),
        (
            lambda c: c.update(**{"global": {"resolve_timeout": "5 minutes"}}),
            "global.resolve_timeout",
        ),
        (lambda c: c.pop("route"), "route"),
        (lambda c: c["route"].update(receiver="nobody"), "route (id 0).receiver"),
        (
            lambda c: c["route"].update(routes=[{"receiver": "default", "group_wait": "x"}]),
            "route.routes[0].group_wait",
        ),
        (lambda c: c.pop("receivers"), "receivers"),
        (lambda c: c["receivers"].append({"name": "default"}), "receivers[1].name"),
        (
            lambda c: c["receivers"][0].update(webhook_configs=[{"ur": "http://x"}]),
            "receivers[0].webhook_configs[0]",
        ),
        (lambda c: c["receivers"][0].update(sms_configs=[]), "receivers[0].sms_configs"),
        (
            lambda c: c.update(inhibit_rules=[{"source_matchers": ["bad"]}]),
            "inhibit_rules[0].source_matchers[0]",
        ),
        (
            lambda c: c.update(inhibit_rules=[{"target_matchers": ['a="b"']}]),
            "inhibit_rules[0].source_matchers",
        ),
        (
            lambda c: c.update(inhibit_rules=[{"source_matchers": ['a="b"'], "equals": ["x"]}]),
            "inhibit_rules[0].equals",
        ),
        (lambda c: c.pop("auth"), "auth"),
        (lambda c: c.update(auth={"tokens_env": "NO_SUCH_VARIABLE_X"}), "auth.tokens_env"),
        (lambda c: c.update(auth={"tokens_file": "/nonexistent/tokens"}), "auth.tokens_file"),
        (lambda c: c.update(auth={"token": "x"}), "auth.token"),
        (lambda c: c.update(storage={"path": "x.db", "synchronous": "off"}), "storage.synchronous"),
        (lambda c: c.update(delivery={"workers": 0}), "delivery.workers"),
        (lambda c: c.update(delivery={"max_backoff": "forever"}), "delivery.max_backoff"),
        (lambda c: c.update(web={"max_request_bytes": "big"}), "web.max_request_bytes"),
        (lambda c: c.update(incidents={"auto_close": "1h"}), "incidents.auto_close"),
    ],
)
def test_invalid_configs_name_the_key_path(tmp_path, change, path):
    raw = base_config(tmp_path)
    change(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value).startswith(path), str(err.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"auth": {"token_file": "t"}},
            "auth.token_file: unknown key (allowed: "
            "allow_unauthenticated_writes, protect_reads, tokens_env, tokens_file)",
        ),
        (
            {"auth": {"protect_reads": "yes", "tokens_env": "X"}},
            "auth.protect_reads: expected true or false, got 'yes'",
        ),
        (
            {"storage": {"pth": "x.db"}},
            "storage.pth: unknown key (allowed: history_retention, password_env, "
            "password_file, path, synchronous, url)",
        ),
        ({"storage": {"synchronous": "off"}}, "storage.synchronous: must be normal or full"),
        ({"global": {"resolve_timeout": "1.5m"}}, "global.resolve_timeout: expected a duration"),
        (
            {"webb": {}},
            "webb: unknown key (allowed: auth, console, delivery, diagnostics, global, "
            "incidents, inhibit_rules, receivers, route, storage, templates, web)",
        ),
    ],
)
def test_sections_are_read_by_the_shared_loader(tmp_path, section, message):
    with pytest.raises(ConfigError) as err:
        parse_config(base_config(tmp_path, **section))
    assert str(err.value).startswith(message), str(err.value)


def test_storage_defaults_and_lower_case_synchronous(tmp_path):
    cfg = parse_config(base_config(tmp_path, storage={"synchronous": "full"}), base_dir=tmp_path)
    assert cfg.storage_synchronous == "FULL"
    assert cfg.storage_path == str(tmp_path / RouterConfig.storage_path)


def test_unauthenticated_writes_must_be_explicit(tmp_path):
    raw = base_config(tmp_path, auth={"allow_unauthenticated_writes": True})
    assert parse_config(raw).auth.tokens == ()


def test_tokens_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_TOKENS", "a, b")
    raw = base_config(
        tmp_path, auth={"tokens_env": "ROUTER_TOKENS", "tokens_file": str(tmp_path / "tokens")}
    )
    tokens = parse_config(raw).auth.tokens
    assert {t.reveal() for t in tokens} == {"a", "b", "router-test-token"}


def test_load_config_relative_paths_and_bad_yaml(tmp_path: Path):
    raw = base_config(tmp_path, storage={"path": "data/router.db"})
    (tmp_path / "router.yml").write_text(yaml.safe_dump(raw))
    assert load_config(tmp_path / "router.yml").storage_path == str(tmp_path / "data/router.db")
    (tmp_path / "bad.yml").write_text("route: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yml")
