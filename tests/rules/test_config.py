"""Engine config: defaults, overlay, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.config import ConfigError, EngineConfig, load_config, parse_config
from stacksense_common.secret import Secret


def test_defaults_match_the_contract():
    c = EngineConfig()
    assert c.interval_seconds == 15 and c.offline_after_seconds == 60
    assert c.grace_offline_after_seconds == 600 and c.grace_period_seconds == 600
    assert c.outage_threshold_seconds == 300
    assert c.listen_address.endswith(":9817")
    assert (c.health_yellow_at, c.health_red_at) == (0.70, 0.85)


def test_full_file_is_parsed_with_relative_paths(tmp_path: Path):
    (tmp_path / "token").write_text("s3cr3t\n")
    cfg = tmp_path / "rules.yml"
    cfg.write_text("""
prometheus: {url: "http://prom:9090/", timeout: 5s, retries: 1, exporter_job: exp}
interval: 30s
state_file: state/rules.json
status: {offline_after: 90s, grace_offline_after: 15m, grace_period: 10m, outage_threshold: 5m}
health: {yellow_at: 0.6, red_at: 0.9}
conditions: {file: my-conditions.yml, include_defaults: false}
anomalies: {enabled: true, metrics: [cpu, network]}
receivers:
  - url: http://router:9818
    bearer_token_file: token
    timeout: 2s
  - url: https://am.example:9093
""")
    c = load_config(cfg)
    assert c.prometheus_url == "http://prom:9090" and c.prometheus_timeout_seconds == 5
    assert c.exporter_job == "exp" and c.interval_seconds == 30
    assert c.state_file == tmp_path / "state/rules.json"
    assert c.offline_after_seconds == 90 and c.grace_offline_after_seconds == 900
    assert c.conditions_file == tmp_path / "my-conditions.yml"
    assert not c.include_default_conditions and c.anomaly_metrics == ("cpu", "network")
    assert c.receivers[0].bearer_token() == Secret("s3cr3t")
    assert c.receivers[0].timeout_seconds == 2
    assert c.receivers[1].bearer_token() is None
    assert "s3cr3t" not in repr(c)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"promethues": {}}, "promethues: unknown key"),
        ({"status": {"offline_afer": "60s"}}, "status.offline_afer: unknown key"),
        (
            {"receivers": [{"url": "http://a"}, {"url": "http://b", "token": "x"}]},
            "receivers[1].token: unknown key",
        ),
        ({"receivers": [{"bearer_token_file": "t"}]}, "receivers[0].url: required"),
        ({"receivers": [{"url": "router:9818"}]}, "receivers[0].url: expected an http"),
        ({"interval": "15 seconds"}, "interval: expected a duration"),
        ({"interval": 0}, "interval: must be > 0"),
        (
            {"health": {"yellow_at": 0.9, "red_at": 0.8}},
            "health.yellow_at: must be <= health.red_at",
        ),
        ({"health": {"red_at": 85}}, "health.red_at: must be <= 1"),
        ({"status": {"offline_after": "11m"}}, "status.grace_offline_after: must be >="),
        ({"anomalies": {"metrics": ["cpu", "gpu"]}}, "anomalies.metrics[1]: unknown metric 'gpu'"),
        ({"listen_address": "9817"}, "listen_address: expected host:port"),
        ({"conditions": {"include_defaults": "yes"}}, "conditions.include_defaults: expected true"),
        ([1, 2], "<top>: expected a mapping"),
    ],
)
def test_errors_name_the_key_path(doc, message):
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert message in str(err.value)


def test_file_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("interval: [\n")
    with pytest.raises(ConfigError, match="bad.yml: invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.yml: cannot read"):
        load_config(tmp_path / "missing.yml")
    bad.write_text("web: {reload_token: x}\n")
    with pytest.raises(ConfigError, match=r"bad.yml: web.reload_token: unknown key"):
        load_config(bad)


def test_shipped_example_config_is_valid():
    example = Path(__file__).resolve().parents[2] / "rules" / "rules.example.yml"
    c = load_config(example)
    assert c.prometheus_url == "http://prometheus:9090"
    assert c.receivers[0].url == "http://stacksense-router:9818"
    assert c.state_file == Path("/var/lib/stacksense/rules-state.json")
