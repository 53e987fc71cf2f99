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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exporter.checks_config import MAX_COMMAND_OUTPUT, Checks, parse_checks
from exporter.collectors.registry import COLLECTORS, DEFAULT_COLLECTORS

# One ConfigError and one Secret for every service (stacksense_common).
from stacksense_common.config import ConfigError, load, read_yaml
from stacksense_common.secret import Secret

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


__all__ = [
    "ConfigError",
    "Credentials",
    "CredentialsSection",
    "Inventory",
    "InventoryFile",
    "Module",
    "ModuleSection",
    "Secret",
    "Server",
    "ServerDefaults",
    "ServerSection",
    "load_inventory",
    "parse_inventory",
]


# ---------------------------------------------------------------- the file's sections
# Each section is a dataclass read by the shared loader: its fields are the allowed keys
# (an unknown key names its path and the allowed ones), its defaults are the defaults.
# Checks the loader cannot express are in __post_init__; their errors name the key.

MIN_OUTPUT_BYTES = 64 * 1024
CHECKS_OUTPUT_ROOM = 1024 * 1024
_TOKEN_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def _non_empty(key: str, value: str | None) -> None:
    if value is not None and not value:
        raise ConfigError(key, "expected a non-empty string, got ''")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(key, f"expected a number > 0, got {value:g}")


def _one_secret_source(section: object, key: str) -> None:
    if getattr(section, f"{key}_env") is not None and getattr(section, f"{key}_file") is not None:
        raise ConfigError("", f"give only one of {key}_env and {key}_file")
    _non_empty(f"{key}_env", getattr(section, f"{key}_env"))


@dataclass(frozen=True)
class CredentialsSection:
    """One entry of `credentials:`. Secrets come from `<key>_env` or `<key>_file`."""

    key_file: Path | None = None
    passphrase_env: str | None = None
    passphrase_file: Path | None = None
    certificate_file: Path | None = None
    agent: bool = False
    password_env: str | None = None
    password_file: Path | None = None

    def __post_init__(self) -> None:
        _one_secret_source(self, "passphrase")
        _one_secret_source(self, "password")
        if self.certificate_file is not None and self.key_file is None:
            raise ConfigError("certificate_file", "needs key_file (the certificate's key)")
        if not (
            self.key_file
            or self.agent
            or self.password_env is not None
            or self.password_file is not None
        ):
            raise ConfigError("", "no authentication method (key_file, agent or password_*)")


@dataclass(frozen=True)
class ModuleSection:
    """One entry of `modules:` (a collection profile)."""

    collectors: tuple[str, ...] = DEFAULT_COLLECTORS
    command_timeout_seconds: float = 10.0
    # Buffer the whole output on the host and write it at once: fewer SSH packets for
    # the exporter, one more fork on the host, which comes first; see
    # docs/decisions/exporter-performance.md.
    one_write: bool = False
    # Output read per probe at most; past it the probe fails (reason "command",
    # detail "output_too_large"). Bounds the exporter's memory whatever a host prints.
    max_output_bytes: int = 4 * 1024 * 1024
    # Service checks, custom commands and log watches (exporter.checks_config reads them).
    services: Any = None
    commands: Any = None
    logs: Any = None

    def __post_init__(self) -> None:
        if not self.collectors:
            raise ConfigError("collectors", "expected a non-empty list of collector names")
        for i, item in enumerate(self.collectors):
            if item not in COLLECTORS:
                raise ConfigError(
                    f"collectors[{i}]",
                    f"unknown collector {item!r} (known: {', '.join(COLLECTORS)})",
                )
        _positive("command_timeout_seconds", self.command_timeout_seconds)
        if self.max_output_bytes < MIN_OUTPUT_BYTES:
            raise ConfigError(
                "max_output_bytes",
                f"expected an integer >= {MIN_OUTPUT_BYTES}, got {self.max_output_bytes!r}",
            )


@dataclass(frozen=True)
class ServerDefaults:
    """The `defaults:` section: what a server entry does not say for itself."""

    port: int = 22
    user: str = "root"
    credentials: str = "default"
    module: str = "default"
    jump: str | None = None
    trust_on_first_use: bool = False
    suspended: bool = False
    connect_timeout_seconds: float = 5.0
    # "push": the host only sends heartbeats (stacksense agent); never contacted over
    # SSH, not in /sd, its status comes from the heartbeat's age.
    mode: Literal["ssh", "push"] = "ssh"
    # A push host whose last heartbeat is older than this is offline.
    push_offline_after_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError("port", f"expected a port number 1-65535, got {self.port!r}")
        for key in ("user", "credentials", "module", "jump"):
            _non_empty(key, getattr(self, key))
        _positive("connect_timeout_seconds", self.connect_timeout_seconds)
        _positive("push_offline_after_seconds", self.push_offline_after_seconds)


@dataclass(frozen=True, kw_only=True)
class ServerSection(ServerDefaults):
    """One entry of `servers:`, read with the `defaults:` keys it does not set."""

    name: str
    host: str | None = None  # a push-only server needs none
    labels: dict[str, Any] = field(default_factory=dict)
    push_token_env: str | None = None
    push_token_file: Path | None = None
    # "sha256:<hex>" of the push token (`stacksense servers token NAME` writes it).
    push_token_hash: str | None = None
    services: Any = None
    commands: Any = None
    logs: Any = None

    def __post_init__(self) -> None:
        _non_empty("name", self.name)
        super().__post_init__()
        if self.mode == "ssh" and not self.host:
            raise ConfigError("host", f"expected a non-empty string, got {self.host!r}")
        _non_empty("host", self.host)
        _one_secret_source(self, "push_token")
        if self.push_token_hash is not None and not _TOKEN_HASH.fullmatch(self.push_token_hash):
            raise ConfigError(
                "push_token_hash",
                "expected sha256:<64 hex digits> (written by `stacksense servers token NAME`)",
            )
        if self.push_token_hash is not None and (
            self.push_token_env is not None or self.push_token_file is not None
        ):
            raise ConfigError("", "give only one of push_token_hash and push_token_env/_file")


@dataclass(frozen=True)
class InventoryFile:
    """The whole `servers.yml`."""

    defaults: ServerDefaults = ServerDefaults()
    credentials: dict[str, CredentialsSection] = field(default_factory=dict)
    modules: dict[str, ModuleSection] = field(default_factory=dict)
    # Entries are read with the `defaults:` section merged in (parse_inventory).
    servers: list[dict[str, Any]] = field(default_factory=list)
    known_hosts: Path | None = None  # None: DEFAULT_KNOWN_HOSTS
    max_concurrency: int = 64
    # A reload that would leave no server is refused unless the file says this.
    allow_empty: bool = False

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(
                "max_concurrency", f"expected an integer >= 1, got {self.max_concurrency!r}"
            )


# ---------------------------------------------------------------- what the exporter uses


@dataclass(frozen=True)
class Credentials:
    name: str
    key_file: Path | None = None
    passphrase: Secret | None = None
    certificate_file: Path | None = None
    agent: bool = CredentialsSection.agent
    password: Secret | None = None


@dataclass(frozen=True)
class Module:
    name: str
    collectors: tuple[str, ...] = ModuleSection.collectors
    command_timeout_seconds: float = ModuleSection.command_timeout_seconds
    one_write: bool = ModuleSection.one_write
    max_output_bytes: int = ModuleSection.max_output_bytes
    # Service checks, custom commands and log watches of every server of the module.
    checks: Checks = Checks()


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int = ServerDefaults.port
    user: str = ServerDefaults.user
    credentials: str = ServerDefaults.credentials
    module: str = ServerDefaults.module
    jump: str | None = ServerDefaults.jump
    labels: Mapping[str, str] = field(default_factory=dict)
    trust_on_first_use: bool = ServerDefaults.trust_on_first_use
    suspended: bool = ServerDefaults.suspended
    push_token: Secret | None = None
    connect_timeout_seconds: float = ServerDefaults.connect_timeout_seconds
    mode: str = ServerDefaults.mode
    push_token_hash: str | None = None
    push_offline_after_seconds: float = ServerDefaults.push_offline_after_seconds
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
    max_concurrency: int = InventoryFile.max_concurrency
    local: bool = False  # no inventory: monitor the machine we run on
    allow_empty: bool = InventoryFile.allow_empty

    def server(self, name: str) -> Server | None:
        return self.servers.get(name)

    def checks_for(self, server: Server, module: Module) -> Checks:
        return module.checks.merged(server.checks)


# ---------------------------------------------------------------- from sections to objects


def _secret(section: object, path: str, key: str) -> Secret | None:
    """The secret named by `<key>_env` or `<key>_file` (the section allows one at most)."""
    var: str | None = getattr(section, f"{key}_env")
    file: Path | None = getattr(section, f"{key}_file")
    if var is not None:
        if var not in os.environ:
            raise ConfigError(f"{path}.{key}_env: environment variable {var} is not set")
        return Secret(os.environ[var])
    if file is not None:
        try:
            return Secret(file.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{path}.{key}_file: cannot read {file}: {exc.strerror}") from None
    return None


def _checks(section: ModuleSection | ServerSection, path: str) -> Checks:
    return parse_checks(
        {"services": section.services, "commands": section.commands, "logs": section.logs}, path
    )


def _credentials(name: str, section: CredentialsSection, path: str) -> Credentials:
    return Credentials(
        name=name,
        key_file=section.key_file,
        passphrase=_secret(section, path, "passphrase"),
        certificate_file=section.certificate_file,
        agent=section.agent,
        password=_secret(section, path, "password"),
    )


def _module(name: str, section: ModuleSection, path: str) -> Module:
    checks = _checks(section, path)
    timeout = section.command_timeout_seconds
    budget = sum(c.timeout_seconds for c in checks.commands)
    if budget >= timeout:
        raise ConfigError(
            f"{path}.commands: their timeouts add up to {budget:g}s, not below "
            f"the module's command_timeout_seconds ({timeout:g}s); the probe "
            "would time out before they do"
        )
    return Module(
        name, section.collectors, timeout, section.one_write, section.max_output_bytes, checks
    )


def _labels(labels: Mapping[str, Any], path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, val in labels.items():
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ConfigError(f"{path}.{key}: not a valid Prometheus label name")
        if key.startswith("__"):
            raise ConfigError(f"{path}.{key}: label names starting with __ are reserved")
        if not isinstance(val, str | int | float) or isinstance(val, bool):
            raise ConfigError(f"{path}.{key}: expected a string value, got {val!r}")
        out[key] = str(val)
    return out


def _server(raw: Mapping[str, Any], defaults: Mapping[str, Any], path: str, base: Path) -> Server:
    # A server's own keys are checked against the entry's, so `defaults:` keys a server
    # may not set (name, host, labels, tokens, checks) never arrive through the merge.
    s = load(ServerSection, {**defaults, **raw}, path, base=base)
    return Server(
        name=s.name,
        host=s.host or "-",  # "-": a push-only server is never contacted
        port=s.port,
        user=s.user,
        credentials=s.credentials,
        module=s.module,
        jump=s.jump,
        labels=_labels(s.labels, f"{path}.labels"),
        trust_on_first_use=s.trust_on_first_use,
        suspended=s.suspended,
        push_token=_secret(s, path, "push_token"),
        connect_timeout_seconds=s.connect_timeout_seconds,
        mode=s.mode,
        push_token_hash=s.push_token_hash,
        push_offline_after_seconds=s.push_offline_after_seconds,
        checks=_checks(s, path),
    )


def parse_inventory(data: Any, *, base: Path) -> Inventory:
    """Validate a parsed YAML document into an Inventory (raises ConfigError)."""
    top = load(InventoryFile, data, "", base=base)
    # The loader checked it: a mapping of ServerDefaults keys, merged into every entry.
    defaults = data.get("defaults") or {} if data is not None else {}
    credentials = {
        name: _credentials(name, section, f"credentials.{name}")
        for name, section in top.credentials.items()
    }
    modules = {"default": Module("default")}
    for name, section in top.modules.items():
        modules[name] = _module(name, section, f"modules.{name}")

    servers: dict[str, Server] = {}
    for i, raw in enumerate(top.servers):
        path = f"servers[{i}]"
        server = _server(raw, defaults, path, base)
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
        needed = (
            2
            * (
                sum(w.max_bytes_per_probe for w in checks.logs)
                + len(checks.commands) * MAX_COMMAND_OUTPUT
            )
            + CHECKS_OUTPUT_ROOM
        )
        if (checks.logs or checks.commands) and needed > module.max_output_bytes:
            raise ConfigError(
                f"servers[{i}]: its logs' max_bytes_per_probe and commands need "
                f"up to {needed} bytes of output, more than module "
                f"{module.name!r}'s max_output_bytes ({module.max_output_bytes});"
                " lower max_bytes_per_probe or raise max_output_bytes"
            )
        budget = sum(c.timeout_seconds for c in checks.commands)
        if budget >= module.command_timeout_seconds:
            raise ConfigError(
                f"servers[{i}].commands: with module {module.name!r}'s, their "
                f"timeouts add up to {budget:g}s, not below its "
                f"command_timeout_seconds ({module.command_timeout_seconds:g}s)"
            )

    known_hosts = top.known_hosts or _expand(DEFAULT_KNOWN_HOSTS, base)
    return Inventory(
        servers, credentials, modules, known_hosts, top.max_concurrency, allow_empty=top.allow_empty
    )


def _expand(path: str, base: Path) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else base / p


def load_inventory(path: str | os.PathLike[str] | None) -> Inventory:
    """Load and validate `servers.yml`; None means no inventory: monitor the local host."""
    if path is None:
        return Inventory(
            {}, {}, {"default": Module("default")}, Path(DEFAULT_KNOWN_HOSTS), local=True
        )
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
