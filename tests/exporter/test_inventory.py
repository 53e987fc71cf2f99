"""Inventory validation: unknown keys, wrong types and missing references name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import ConfigError, Module, Server, load_inventory, parse_inventory

BASE = {"credentials": {"default": {"key_file": "/k"}}}


@pytest.mark.parametrize(
    "doc,message",
    [
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "prot": 22}]},
            "servers[0].prot: unknown key",
        ),
        ({**BASE, "serverz": []}, "serverz: unknown key"),
        ({**BASE, "servers": [{"name": "a", "host": "h", "port": 70000}]}, "servers[0].port"),
        ({**BASE, "servers": [{"name": "a", "host": "h", "port": "22"}]}, "servers[0].port"),
        ({**BASE, "servers": [{"host": "h"}]}, "servers[0].name: required"),
        (
            {**BASE, "servers": [{"name": "", "host": "h"}]},
            "servers[0].name: expected a non-empty string",
        ),
        ({**BASE, "servers": [{"name": "a"}]}, "servers[0].host: expected a non-empty string"),
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "mode": "pull"}]},
            "servers[0].mode: expected one of ssh, push, got 'pull'",
        ),
        (
            {**BASE, "defaults": {"port": 0}, "servers": []},
            "defaults.port: expected a port number 1-65535, got 0",
        ),
        ({**BASE, "servers": ["a"]}, "servers[0]: expected a mapping"),
        ({**BASE, "max_concurrency": 0}, "max_concurrency: expected an integer >= 1"),
        (
            {"credentials": {"default": {"password_env": "A", "password_file": "/p"}}},
            "credentials.default: give only one of password_env and password_file",
        ),
        (
            {**BASE, "servers": [{"name": "a", "host": "h"}, {"name": "a", "host": "i"}]},
            "servers[1].name: duplicate server name 'a'",
        ),
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "credentials": "nope"}]},
            "servers[0].credentials: no credentials named 'nope'",
        ),
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "module": "nope"}]},
            "servers[0].module: no module named 'nope'",
        ),
        ({**BASE, "servers": [{"name": "a", "host": "h", "jump": "b"}]}, "servers[0].jump"),
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "labels": {"__x": "1"}}]},
            "servers[0].labels.__x",
        ),
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "suspended": "yes"}]},
            "servers[0].suspended: expected true or false",
        ),
        (
            {"credentials": {"default": {"key_fil": "/k"}}},
            "credentials.default.key_fil: unknown key",
        ),
        ({"credentials": {"default": {}}}, "credentials.default: no authentication method"),
        (
            {"credentials": {"default": {"password_env": "SS_NOT_SET_ANYWHERE"}}},
            "credentials.default.password_env: environment variable SS_NOT_SET_ANYWHERE is not set",
        ),
        (
            {**BASE, "modules": {"m": {"collectors": ["loadavg", "warp_drive"]}}},
            "modules.m.collectors[1]: unknown collector 'warp_drive'",
        ),
        ({**BASE, "defaults": {"host": "x"}}, "defaults.host: unknown key"),
        ({**BASE, "modules": {"m": {"one_write": "yes"}}}, "modules.m.one_write: expected true or"),
    ],
)
def test_errors_name_the_key_path(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_inventory(doc, base=Path("/"))
    assert message in str(err.value)


@pytest.mark.parametrize(
    "doc,message",
    [
        (
            {**BASE, "servers": [{"name": "a", "host": "h", "prot": 22}]},
            "servers[0].prot: unknown key (allowed: commands, connect_timeout_seconds, credentials, "  # noqa: E501
            "host, jump, labels, logs, mode, module, name, port, push_offline_after_seconds, "
            "push_token_env, push_token_file, push_token_hash, services, suspended, "
            "trust_on_first_use, user)",
        ),
        (
            {**BASE, "defaults": {"labels": {}}},
            "defaults.labels: unknown key (allowed: connect_timeout_seconds, credentials, jump, mode, "  # noqa: E501
            "module, port, push_offline_after_seconds, suspended, trust_on_first_use, user)",
        ),
        (
            {"credentials": {"default": {"key_fil": "/k"}}},
            "credentials.default.key_fil: unknown key (allowed: agent, certificate_file, key_file, "
            "passphrase_env, passphrase_file, password_env, password_file)",
        ),
        (
            {**BASE, "modules": {"m": {"colectors": []}}},
            "modules.m.colectors: unknown key (allowed: collectors, command_timeout_seconds, commands, "  # noqa: E501
            "logs, max_output_bytes, one_write, services)",
        ),
        (
            {**BASE, "serverz": []},
            "serverz: unknown key (allowed: allow_empty, credentials, defaults, known_hosts, "
            "max_concurrency, modules, servers)",
        ),
    ],
)
def test_unknown_keys_list_the_allowed_ones(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_inventory(doc, base=Path("/"))
    assert str(err.value) == message


def test_defaults_apply_and_servers_override() -> None:
    inv = parse_inventory(
        {
            **BASE,
            "defaults": {"user": "monitor", "port": 2222},
            "servers": [{"name": "a", "host": "h"}, {"name": "b", "host": "h", "port": 22}],
        },
        base=Path("/"),
    )
    assert (inv.servers["a"].user, inv.servers["a"].port) == ("monitor", 2222)
    assert inv.servers["b"].port == 22
    # A push-only server needs no host, and the defaults written once are a server's.
    push = parse_inventory({**BASE, "servers": [{"name": "p", "mode": "push"}]}, base=Path("/"))
    assert push.servers["p"].host == "-" and push.servers["p"].push_only
    bare = parse_inventory({**BASE, "servers": [{"name": "a", "host": "h"}]}, base=Path("/"))
    assert bare.servers["a"] == Server(name="a", host="h")
    assert bare.modules["default"] == Module("default")
    assert bare.known_hosts == Path("~/.ssh/known_hosts").expanduser()
    assert parse_inventory(None, base=Path("/")).servers == {}


def test_secrets_are_read_but_never_shown(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2-secret\n")
    inv = parse_inventory({"credentials": {"default": {"password_file": "pw"}}}, base=tmp_path)
    creds = inv.credentials["default"]
    assert creds.password is not None and creds.password.reveal() == "hunter2-secret"
    assert "hunter2" not in repr(inv) and "hunter2" not in str(creds)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "servers.yml"
    bad.write_text("servers:\n  - name: a\n   host: [\n")
    with pytest.raises(ConfigError, match=r"servers.yml: invalid YAML at line \d+"):
        load_inventory(bad)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read inventory"):
        load_inventory(tmp_path / "absent.yml")
