"""The inventory (`servers.yml`): servers, credentials and modules, validated at load.

Credentials are kept apart from collection profiles (modules), as
snmp_exporter keeps `auth` apart from `module`. Every unknown key is an error
that names its path (`servers[2].credentails`), so a typo never silently
disables a setting. Secrets are read from files or environment variables at
load time and never appear in `repr`, logs or errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.checks_config import MAX_COMMAND_OUTPUT, Checks, ChecksError, parse_checks
from exporter.collectors.registry import COLLECTORS, DEFAULT_COLLECTORS

# One ConfigError and one Secret for every service (stacksense_common).
from stacksense_common.config import ConfigError, check_keys, read_yaml
from stacksense_common.secret import Secret

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


__all__ = ["ConfigError", "Credentials", "Inventory", "Module", "Secret", "Server",
           "load_inventory", "parse_inventory"]


@dataclass(frozen=True)
class Credentials:
    name: str
    key_file: Path | None = None
    passphrase: Secret | None = None
    certificate_file: Path | None = None
    agent: bool = False
    password: Secret | None = None


@dataclass(frozen=True)
class Module:
    name: str
    collectors: tuple[str, ...] = DEFAULT_COLLECTORS
    command_timeout_seconds: float = 10.0
    # Buffer the whole output on the host and write it at once: fewer SSH packets for
    # the exporter, one more fork on the host, which comes first; see
    # docs/decisions/exporter-performance.md.
    one_write: bool = False
    # Output read per probe at most; past it the probe fails (reason "command",
    # detail "output_too_large"). Bounds the exporter's memory whatever a host prints.
    max_output_bytes: int = 4 * 1024 * 1024
    # Service checks, custom commands and log watches of every server of the module.
    checks: Checks = Checks()


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int = 22
    user: str = "root"
    credentials: str = "default"
    module: str = "default"
    jump: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    trust_on_first_use: bool = False
    suspended: bool = False
    push_token: Secret | None = None
    connect_timeout_seconds: float = 5.0
    # "push": the host only sends heartbeats (stacksense agent); never contacted over
    # SSH, not in /sd, its status comes from the heartbeat's age.
    mode: str = "ssh"
    # "sha256:<hex>" of the push token (`stacksense servers token NAME` writes it).
    push_token_hash: str | None = None
    # A push host whose last heartbeat is older than this is offline.
    push_offline_after_seconds: float = 60.0
    # This server's own checks, added to its module's (Inventory.checks_for merges them).
    checks: Checks = Checks()

    @property
    def push_only(self) -> bool:
        return self.mode == "push"


@dataclass(frozen=True)
class Inventory:
    servers: Mapping[str, Server]
    credentials: Mapping[str, Credentials]
    modules: Mapping[str, Module]
    known_hosts: Path
    max_concurrency: int = 64
    local: bool = False  # no inventory: monitor the machine we run on
    # A reload that would leave no server is refused unless the file says this.
    allow_empty: bool = False

    def server(self, name: str) -> Server | None:
        return self.servers.get(name)

    def checks_for(self, server: Server, module: Module) -> Checks:
        return module.checks.merged(server.checks)


# ---------------------------------------------------------------- validation helpers


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(value: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    check_keys(value, path, allowed)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    return value


def _number(value: Any, path: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
        raise ConfigError(f"{path}: expected a number > {minimum:g}, got {value!r}")
    return float(value)


def _port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{path}: expected a port number 1-65535, got {value!r}")
    return value


def _secret(raw: Mapping[str, Any], path: str, key: str, base: Path) -> Secret | None:
    """Read `<key>_env` or `<key>_file` (exactly one may be given)."""
    env_key, file_key = f"{key}_env", f"{key}_file"
    if env_key in raw and file_key in raw:
        raise ConfigError(f"{path}: give only one of {env_key} and {file_key}")
    if env_key in raw:
        var = _str(raw[env_key], f"{path}.{env_key}")
        if var not in os.environ:
            raise ConfigError(f"{path}.{env_key}: environment variable {var} is not set")
        return Secret(os.environ[var])
    if file_key in raw:
        file = _path(raw[file_key], f"{path}.{file_key}", base)
        try:
            return Secret(file.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{path}.{file_key}: cannot read {file}: {exc.strerror}") from None
    return None


def _path(value: Any, path: str, base: Path) -> Path:
    p = Path(os.path.expanduser(_str(value, path)))
    return p if p.is_absolute() else base / p


# ---------------------------------------------------------------- sections

_CRED_KEYS = {"key_file", "passphrase_env", "passphrase_file", "certificate_file", "agent",
              "password_env", "password_file"}
_CHECK_KEYS = {"services", "commands", "logs"}
_MODULE_KEYS = {"collectors", "command_timeout_seconds", "one_write", "max_output_bytes",
                *_CHECK_KEYS}
_SERVER_KEYS = {"name", "host", "port", "user", "credentials", "module", "jump", "labels",
                "trust_on_first_use", "suspended", "push_token_env", "push_token_file",
                "connect_timeout_seconds", "mode", "push_token_hash",
                "push_offline_after_seconds", *_CHECK_KEYS}
_DEFAULT_KEYS = _SERVER_KEYS - {"name", "host", "labels", "push_token_env", "push_token_file",
                                "push_token_hash", *_CHECK_KEYS}
_TOKEN_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TOP_KEYS = {"defaults", "credentials", "modules", "servers", "known_hosts", "max_concurrency",
             "allow_empty"}
MIN_OUTPUT_BYTES = 64 * 1024
CHECKS_OUTPUT_ROOM = 1024 * 1024


def _credentials(name: str, raw: Mapping[str, Any], path: str, base: Path) -> Credentials:
    _check_keys(raw, path, _CRED_KEYS)
    key_file = _path(raw["key_file"], f"{path}.key_file", base) if "key_file" in raw else None
    cert = (_path(raw["certificate_file"], f"{path}.certificate_file", base)
            if "certificate_file" in raw else None)
    if cert is not None and key_file is None:
        raise ConfigError(f"{path}.certificate_file: needs key_file (the certificate's key)")
    creds = Credentials(
        name=name,
        key_file=key_file,
        passphrase=_secret(raw, path, "passphrase", base),
        certificate_file=cert,
        agent=_bool(raw.get("agent", Credentials.agent), f"{path}.agent"),
        password=_secret(raw, path, "password", base),
    )
    if not (creds.key_file or creds.agent or creds.password):
        raise ConfigError(f"{path}: no authentication method (key_file, agent or password_*)")
    return creds


def _module(name: str, raw: Mapping[str, Any], path: str) -> Module:
    _check_keys(raw, path, _MODULE_KEYS)
    collectors = DEFAULT_COLLECTORS
    if "collectors" in raw:
        items = raw["collectors"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{path}.collectors: expected a non-empty list of collector names")
        for i, item in enumerate(items):
            if item not in COLLECTORS:
                raise ConfigError(f"{path}.collectors[{i}]: unknown collector {item!r} "
                                  f"(known: {', '.join(COLLECTORS)})")
        collectors = tuple(items)
    timeout = _number(raw.get("command_timeout_seconds", Module.command_timeout_seconds),
                      f"{path}.command_timeout_seconds")
    one_write = _bool(raw.get("one_write", Module.one_write), f"{path}.one_write")
    max_output = raw.get("max_output_bytes", Module.max_output_bytes)
    if isinstance(max_output, bool) or not isinstance(max_output, int) \
            or max_output < MIN_OUTPUT_BYTES:
        raise ConfigError(f"{path}.max_output_bytes: expected an integer >= {MIN_OUTPUT_BYTES}, "
                          f"got {max_output!r}")
    checks = _checks(raw, path)
    budget = sum(c.timeout_seconds for c in checks.commands)
    if budget >= timeout:
        raise ConfigError(f"{path}.commands: their timeouts add up to {budget:g}s, not below "
                          f"the module's command_timeout_seconds ({timeout:g}s); the probe "
                          "would time out before they do")
    return Module(name, collectors, timeout, one_write, max_output, checks)


def _checks(raw: Mapping[str, Any], path: str) -> Checks:
    try:
        return parse_checks(raw, path)
    except ChecksError as exc:
        raise ConfigError(str(exc)) from None


def _labels(value: Any, path: str) -> dict[str, str]:
    labels = _mapping(value, path)
    out: dict[str, str] = {}
    for key, val in labels.items():
        if not isinstance(key, str) or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ConfigError(f"{path}.{key}: not a valid Prometheus label name")
        if key.startswith("__"):
            raise ConfigError(f"{path}.{key}: label names starting with __ are reserved")
        if not isinstance(val, str | int | float) or isinstance(val, bool):
            raise ConfigError(f"{path}.{key}: expected a string value, got {val!r}")
        out[key] = str(val)
    return out


def _server(raw: Mapping[str, Any], defaults: Mapping[str, Any], path: str, base: Path) -> Server:
    _check_keys(raw, path, _SERVER_KEYS)
    merged = {**defaults, **raw}
    get: Callable[[str, Any], Any] = merged.get
    mode = get("mode", Server.mode)
    if mode not in ("ssh", "push"):
        raise ConfigError(f"{path}.mode: expected ssh or push, got {mode!r}")
    token_hash = raw.get("push_token_hash")
    if token_hash is not None and (not isinstance(token_hash, str)
                                   or not _TOKEN_HASH.fullmatch(token_hash)):
        raise ConfigError(f"{path}.push_token_hash: expected sha256:<64 hex digits> "
                          "(written by `stacksense servers token NAME`)")
    if token_hash is not None and ("push_token_env" in raw or "push_token_file" in raw):
        raise ConfigError(f"{path}: give only one of push_token_hash and push_token_env/_file")
    host = raw.get("host")
    if mode == "push" and host is None:
        host = "-"  # never contacted
    return Server(
        name=_str(raw.get("name"), f"{path}.name"),
        host=_str(host, f"{path}.host"),
        port=_port(get("port", Server.port), f"{path}.port"),
        user=_str(get("user", Server.user), f"{path}.user"),
        credentials=_str(get("credentials", Server.credentials), f"{path}.credentials"),
        module=_str(get("module", Server.module), f"{path}.module"),
        jump=_str(get("jump", None), f"{path}.jump") if get("jump", None) is not None else None,
        labels=_labels(raw.get("labels"), f"{path}.labels"),
        trust_on_first_use=_bool(get("trust_on_first_use", Server.trust_on_first_use),
                                 f"{path}.trust_on_first_use"),
        suspended=_bool(get("suspended", Server.suspended), f"{path}.suspended"),
        push_token=_secret(raw, path, "push_token", base),
        connect_timeout_seconds=_number(get("connect_timeout_seconds",
                                            Server.connect_timeout_seconds),
                                        f"{path}.connect_timeout_seconds"),
        mode=mode,
        push_token_hash=token_hash,
        push_offline_after_seconds=_number(get("push_offline_after_seconds",
                                               Server.push_offline_after_seconds),
                                           f"{path}.push_offline_after_seconds"),
        checks=_checks(raw, path),
    )


def parse_inventory(data: Any, *, base: Path) -> Inventory:
    """Validate a parsed YAML document into an Inventory (raises ConfigError)."""
    top = _mapping(data, "(top level)")
    _check_keys(top, "", _TOP_KEYS)
    defaults = _mapping(top.get("defaults"), "defaults")
    _check_keys(defaults, "defaults", _DEFAULT_KEYS)

    credentials = {
        name: _credentials(name, _mapping(raw, f"credentials.{name}"), f"credentials.{name}", base)
        for name, raw in _mapping(top.get("credentials"), "credentials").items()
    }
    modules = {"default": Module("default")}
    for name, raw in _mapping(top.get("modules"), "modules").items():
        modules[name] = _module(name, _mapping(raw, f"modules.{name}"), f"modules.{name}")

    raw_servers = top.get("servers") or []
    if not isinstance(raw_servers, list):
        raise ConfigError("servers: expected a list of servers")
    servers: dict[str, Server] = {}
    for i, raw in enumerate(raw_servers):
        path = f"servers[{i}]"
        server = _server(_mapping(raw, path), defaults, path, base)
        if server.name in servers:
            raise ConfigError(f"{path}.name: duplicate server name {server.name!r}")
        if server.credentials not in credentials:
            raise ConfigError(f"{path}.credentials: no credentials named {server.credentials!r}")
        if server.module not in modules:
            raise ConfigError(f"{path}.module: no module named {server.module!r}")
        servers[server.name] = server
    for i, server in enumerate(servers.values()):
        if server.jump is not None and server.jump not in servers:
            raise ConfigError(f"servers[{i}].jump: no server named {server.jump!r}")
        if server.jump == server.name:
            raise ConfigError(f"servers[{i}].jump: a server cannot be its own jump host")
        if server.jump is not None and servers[server.jump].push_only:
            raise ConfigError(f"servers[{i}].jump: {server.jump!r} is push-only (mode: push)")
        module = modules[server.module]
        checks = module.checks.merged(server.checks)
        # Log data and command output reach the exporter with a '|' before every line:
        # at most twice their caps. They must fit in the probe's output cap with room
        # for the collectors (~60 KiB on a small host, far more on a big one).
        needed = 2 * (sum(w.max_bytes_per_probe for w in checks.logs)
                      + len(checks.commands) * MAX_COMMAND_OUTPUT) + CHECKS_OUTPUT_ROOM
        if (checks.logs or checks.commands) and needed > module.max_output_bytes:
            raise ConfigError(f"servers[{i}]: its logs' max_bytes_per_probe and commands need "
                              f"up to {needed} bytes of output, more than module "
                              f"{module.name!r}'s max_output_bytes ({module.max_output_bytes});"
                              " lower max_bytes_per_probe or raise max_output_bytes")
        budget = sum(c.timeout_seconds for c in checks.commands)
        if budget >= module.command_timeout_seconds:
            raise ConfigError(f"servers[{i}].commands: with module {module.name!r}'s, their "
                              f"timeouts add up to {budget:g}s, not below its "
                              f"command_timeout_seconds ({module.command_timeout_seconds:g}s)")

    known_hosts = _path(top.get("known_hosts", DEFAULT_KNOWN_HOSTS), "known_hosts", base)
    concurrency = int(_number(top.get("max_concurrency", Inventory.max_concurrency),
                              "max_concurrency"))
    allow_empty = _bool(top.get("allow_empty", Inventory.allow_empty), "allow_empty")
    return Inventory(servers, credentials, modules, known_hosts, concurrency,
                     allow_empty=allow_empty)


def load_inventory(path: str | os.PathLike[str] | None) -> Inventory:
    """Load and validate `servers.yml`; None means no inventory: monitor the local host."""
    if path is None:
        return Inventory({}, {}, {"default": Module("default")}, Path(DEFAULT_KNOWN_HOSTS),
                         local=True)
    file = Path(path)
    data = read_yaml(file, "inventory")
    try:
        return parse_inventory(data, base=file.parent.resolve())
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        # Shapes the validators did not foresee (a list as a mapping key, deep nesting):
        # still one clear line, never a traceback.
        raise ConfigError(f"{file}: unusable inventory ({type(exc).__name__})") from None
