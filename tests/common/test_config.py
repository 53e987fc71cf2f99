"""The dataclass-driven loader: unknown keys (path + allowed keys), types, defaults once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from stacksense_common.config import ConfigError, Seconds, check_keys, keys_of, load, read_yaml
from stacksense_common.secret import Secret


@dataclass(frozen=True)
class Ssh:
    port: int = 22
    user: str = "root"
    timeout: Seconds = 5.0
    password: Secret | None = None


@dataclass(frozen=True)
class Server:
    name: str
    ssh: Ssh = field(default_factory=Ssh)
    labels: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    mode: Literal["ssh", "push"] = "ssh"
    weight: float = 1.0
    enabled: bool = True
    key_file: Path | None = None
    grace: Seconds = 60.0
    extra: Any = None

    def __post_init__(self) -> None:
        if self.mode == "push" and self.key_file is not None:
            raise ValueError("a push server needs no key_file")


@dataclass(frozen=True)
class Top:
    servers: list[Server] = field(default_factory=list)
    interval: Seconds = 15.0
    nested_limits: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Aliased:
    for_: Seconds = field(default=0.0, metadata={"key": "for"})


def test_defaults_come_from_the_dataclass() -> None:
    top = load(Top, {"servers": [{"name": "a"}]})
    assert top == Top(servers=[Server(name="a")])
    assert top.servers[0].ssh.timeout == 5.0 and top.interval == 15.0
    assert load(Top, None) == Top()  # an empty file is all defaults


def test_values_are_converted() -> None:
    top = load(
        Top,
        {
            "interval": "1m30s",
            "servers": [
                {
                    "name": "a",
                    "ssh": {"port": 2222, "timeout": "500ms", "password": "pw"},
                    "labels": {"env": "prod"},
                    "tags": ["x", "y"],
                    "mode": "push",
                    "weight": 2,
                    "enabled": False,
                    "extra": {"free": [1]},
                }
            ],
            "nested_limits": {"a": [1, 2]},
        },
    )
    server = top.servers[0]
    assert top.interval == 90.0 and server.ssh.port == 2222 and server.ssh.timeout == 0.5
    assert isinstance(server.ssh.password, Secret) and server.ssh.password.reveal() == "pw"
    assert server.tags == ("x", "y") and server.weight == 2.0 and isinstance(server.weight, float)
    assert server.extra == {"free": [1]} and top.nested_limits == {"a": [1, 2]}


def test_an_unknown_key_names_its_path_and_the_allowed_keys() -> None:
    raw = {"servers": [{"name": "a"}] * 3 + [{"name": "d", "ssh": {"prot": 22}}]}
    with pytest.raises(ConfigError) as err:
        load(Top, raw)
    assert (
        str(err.value) == "servers[3].ssh.prot: unknown key (allowed: password, port, "
        "timeout, user)"
    )
    assert err.value.path == "servers[3].ssh.prot"
    with pytest.raises(
        ConfigError,
        match=r"^intervall: unknown key \(allowed: interval, "
        r"nested_limits, servers\)$",
    ):
        load(Top, {"intervall": "1m"})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"servers": {"name": "a"}}, "servers: expected a list, got a mapping"),
        ({"servers": [{}]}, "servers[0].name: required"),
        ({"servers": [{"name": 5}]}, "servers[0].name: expected a string, got 5"),
        (
            {"servers": [{"name": "a", "ssh": {"port": "22"}}]},
            "servers[0].ssh.port: expected an integer, got '22'",
        ),
        (
            {"servers": [{"name": "a", "ssh": {"port": True}}]},
            "servers[0].ssh.port: expected an integer, got True",
        ),
        ({"servers": [{"name": "a", "weight": "x"}]}, "servers[0].weight: expected a number"),
        (
            {"servers": [{"name": "a", "enabled": "yes"}]},
            "servers[0].enabled: expected true or false, got 'yes'",
        ),
        (
            {"servers": [{"name": "a", "mode": "pull"}]},
            "servers[0].mode: expected one of ssh, push, got 'pull'",
        ),
        (
            {"servers": [{"name": "a", "labels": {"env": 1}}]},
            "servers[0].labels.env: expected a string, got 1",
        ),
        ({"servers": [{"name": "a", "tags": "x"}]}, "servers[0].tags: expected a list"),
        (
            {"servers": [{"name": "a", "ssh": {"timeout": "1.5s"}}]},
            "servers[0].ssh.timeout: expected a duration, got '1.5s'; the grammar: [0-9]+",
        ),
        (
            {"servers": [{"name": "a", "ssh": "x"}]},
            "servers[0].ssh: expected a mapping, got a string",
        ),
        (
            {"servers": [{"name": "a", "mode": "push", "key_file": "k"}]},
            "servers[0]: a push server needs no key_file",
        ),
        ({"nested_limits": {"a": [1, "2"]}}, "nested_limits.a[1]: expected an integer, got '2'"),
        ([], "<top>: expected a mapping, got a list"),
    ],
)
def test_wrong_types_name_the_path_and_the_expected_type(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(Top, raw)
    assert str(err.value).startswith(message)


def test_a_mistyped_secret_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        load(Ssh, {"password": 12345678}, "ssh")
    assert str(err.value) == "ssh.password: expected a string, got an integer"


def test_optional_accepts_null_and_paths_resolve_against_base(tmp_path: Path) -> None:
    server = load(Server, {"name": "a", "key_file": None})
    assert server.key_file is None
    server = load(Server, {"name": "a", "key_file": "keys/id"}, base=tmp_path)
    assert server.key_file == tmp_path / "keys/id"
    assert load(Server, {"name": "a", "key_file": "/abs"}, base=tmp_path).key_file == Path("/abs")


def test_a_key_python_cannot_spell_is_aliased() -> None:
    assert load(Aliased, {"for": "5m"}).for_ == 300.0
    assert keys_of(Aliased) == ["for"]
    with pytest.raises(ConfigError, match=r"for_: unknown key \(allowed: for\)"):
        load(Aliased, {"for_": "5m"})


def test_hand_written_loaders_share_the_same_checks() -> None:
    assert check_keys(None, "a", {"x"}) == {}
    with pytest.raises(ConfigError, match=r"^a\.y: unknown key \(allowed: x, z\)$"):
        check_keys({"y": 1}, "a", {"x", "z"})
    with pytest.raises(ConfigError, match=r"^a\.x: required$"):
        check_keys({}, "a", {"x"}, required=["x"])


def test_config_error_takes_a_message_or_a_path_and_a_message() -> None:
    assert str(ConfigError("a.b: bad")) == "a.b: bad" and ConfigError("a.b: bad").path == ""
    err = ConfigError("a.b", "bad")
    assert str(err) == "a.b: bad" and err.path == "a.b" and isinstance(err, ValueError)
    assert str(ConfigError("", "bad")) == "bad"


def test_read_yaml_names_the_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text("a: 1\n")
    bad.write_text("a: [1\n")
    assert read_yaml(good) == {"a": 1}
    with pytest.raises(ConfigError, match=r"bad\.yml: invalid YAML at line"):
        read_yaml(bad)
    with pytest.raises(ConfigError, match=r"missing\.yml: cannot read"):
        read_yaml(tmp_path / "missing.yml")


@dataclass(frozen=True)
class Window:
    low: int = 0
    high: int = 10

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ConfigError("high", "must not be below low")


def test_a_post_init_config_error_is_placed_below_the_dataclass_path() -> None:
    with pytest.raises(ConfigError) as err:
        load(Window, {"low": 5, "high": 1}, "limits[2]")
    assert str(err.value) == "limits[2].high: must not be below low"
    assert (err.value.path, err.value.message) == ("limits[2].high", "must not be below low")


@dataclass(frozen=True)
class Optionals:
    wait: Seconds | None = None
    levels: tuple[Literal["info", "warning"], ...] = ()


def test_optional_durations_and_lists_of_choices() -> None:
    assert load(Optionals, {"wait": None}).wait is None
    assert load(Optionals, {"wait": "2m", "levels": ["info"]}) == Optionals(120.0, ("info",))
    with pytest.raises(
        ConfigError,
        match=r"^levels\[1\]: expected one of info, warning, "
        r"got 'debug'$",
    ):
        load(Optionals, {"levels": ["info", "debug"]})
