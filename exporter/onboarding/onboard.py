"""Onboarding: log in once with a password, deploy the monitoring key, record the server.

The password is used for one login and nothing else: it is never logged, printed,
stored, or put in an error. The key line reaches the host on the command's stdin;
the command itself is a fixed string.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from exporter.inventory_edit import InventoryEditError, load_inventory, upsert_server
from exporter.onboarding.keys import (
    HostKeyRefused,
    KeyProblem,
    PinningPolicy,
    generate_ed25519,
    load_known_hosts,
    load_private_key,
    public_line,
)
from stacksense_common.secret import Secret

log = logging.getLogger("stacksense.onboard")

DEFAULT_KEY_NAME = "keys/stacksense_ed25519"
# The inventory loader's defaults (exporter/config.py), so that what onboarding pins and
# writes is what the exporter will read.
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
DEFAULT_USER = "root"
DEFAULT_CREDENTIALS = "default"
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Runs under /bin/sh whatever the user's login shell is. It reads the key line from
# stdin (never from its own text), creates ~/.ssh (0700) and authorized_keys (0600)
# only when missing, and appends the line unless the same key is already there.
_DEPLOY_SCRIPT = (
    "umask 077; set -e; IFS= read -r line; set -f; set -- $line; "
    'd="$HOME/.ssh"; f="$d/authorized_keys"; '
    '[ -d "$d" ] || mkdir -m 700 "$d"; '
    '[ -e "$f" ] || : > "$f"; '
    'if awk -v t="$1" -v b="$2" '
    '"{for (i = 1; i < NF; i++) if (\\$i == t && \\$(i+1) == b) found = 1} END {exit !found}" '
    '"$f"; then echo present; exit 0; fi; '
    '[ ! -s "$f" ] || [ -z "$(tail -c 1 "$f")" ] || echo >> "$f"; '
    'printf "%s\\n" "$line" >> "$f"; echo added'
)
DEPLOY_COMMAND = "/bin/sh -c '" + _DEPLOY_SCRIPT + "'"
assert "'" not in _DEPLOY_SCRIPT  # the script is wrapped in single quotes above


class OnboardError(Exception):
    """Onboarding failed; the message says which step and why (never a secret)."""


@dataclass(frozen=True)
class OnboardRequest:
    """Everything `onboard` needs. The password is a Secret: it shows as <secret>."""

    name: str
    host: str
    password: Secret
    inventory: Path
    port: int = 22
    user: str | None = None
    key: Path | None = None
    credentials: str = DEFAULT_CREDENTIALS
    known_hosts: Path | None = None
    trust_on_first_use: bool = False
    jump: str | None = None
    module: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 15.0


@dataclass(frozen=True)
class OnboardResult:
    """What onboarding did, for the command's summary."""

    key_file: Path
    key_generated: bool
    key_added: bool  # False when the key was already authorized
    known_hosts: Path
    inventory: Path


def onboard(req: OnboardRequest) -> OnboardResult:
    """Deploy the key to `req.host`, check key login, and add the server to the inventory."""
    if not SERVER_NAME.fullmatch(req.name):
        raise OnboardError(f"server name {req.name!r} must be letters, digits, '.', '_' or '-'")
    if not req.host or req.host.startswith("-") or any(c.isspace() for c in req.host):
        raise OnboardError(f"host {req.host!r} is not a valid host name or address")
    if not 0 < req.port < 65536:
        raise OnboardError(f"port {req.port} is out of range")
    for label in req.labels:
        if not LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise OnboardError(f"label {label!r} is not a valid Prometheus label name")
    try:
        data = load_inventory(req.inventory)
    except InventoryEditError as exc:
        raise OnboardError(str(exc)) from None
    if req.module and req.module != "default" and req.module not in (data.get("modules") or {}):
        raise OnboardError(f"module {req.module!r} is not defined in {req.inventory}")
    base = req.inventory.parent
    creds = _credentials_entry(data, req.credentials)
    key_file = _key_path(req, creds, base)
    known_hosts, write_known_hosts = _known_hosts_path(req, data, base)
    defaults = data.get("defaults") or {}
    user = str(req.user or defaults.get("user") or DEFAULT_USER)

    generated = False
    if key_file.exists():
        key = load_private_key(key_file, _passphrase(creds))
    else:
        log.info("generating Ed25519 key %s", key_file)
        generate_ed25519(key_file, f"stacksense@{socket.gethostname()}")
        key = load_private_key(key_file)
        generated = True
    line = public_line(key, "stacksense")

    with ExitStack() as stack:
        jump = stack.enter_context(_jump_client(data, req, known_hosts)) if req.jump else None
        client = stack.enter_context(
            _connect(req, user, known_hosts, jump, password=req.password, trust=True)
        )
        added = _deploy(client, line)
    state = "added" if added else "already present"
    log.info("key %s on %s@%s:%s", state, user, req.host, req.port)

    with ExitStack() as stack:
        jump = stack.enter_context(_jump_client(data, req, known_hosts)) if req.jump else None
        try:
            stack.enter_context(_connect(req, user, known_hosts, jump, pkey=key, trust=False))
        except OnboardError as exc:
            raise OnboardError(f"the key was deployed but key login failed: {exc}") from exc

    entry: dict[str, Any] = {
        "name": req.name,
        "host": req.host,
        "port": req.port,
        "user": user,
        "credentials": req.credentials,
    }
    if req.jump:
        entry["jump"] = req.jump
    if req.module:
        entry["module"] = req.module
    if req.labels:
        entry["labels"] = dict(req.labels)
    new_creds = None if creds is not None else {"key_file": str(key_file)}
    try:
        kept = upsert_server(
            req.inventory,
            entry,
            credentials=(req.credentials, new_creds),
            known_hosts=str(known_hosts) if write_known_hosts else None,
        )
    except InventoryEditError as exc:
        raise OnboardError(str(exc)) from None
    if not kept:
        log.warning(
            "%s was rewritten without its comments (its layout could not be edited "
            "in place); the data is unchanged apart from the new entry",
            req.inventory,
        )
    return OnboardResult(key_file, generated, added, known_hosts, req.inventory)


def _resolve(path: str | Path, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _known_hosts_path(req: OnboardRequest, data: dict[str, Any], base: Path) -> tuple[Path, bool]:
    """The known_hosts file the exporter will read, and whether the inventory must name it."""
    configured = data.get("known_hosts")
    if configured:
        path = _resolve(str(configured), base)
        if req.known_hosts and _resolve(req.known_hosts, base) != path:
            raise OnboardError(
                f"the inventory reads host keys from {configured}; --known-hosts "
                f"{req.known_hosts} would pin this host where the exporter never "
                "looks (drop the flag or change `known_hosts` in the inventory)"
            )
        return path, False
    default = _resolve(DEFAULT_KNOWN_HOSTS, base)
    if not req.known_hosts or _resolve(req.known_hosts, base) == default:
        return default, False
    if data.get("servers"):
        raise OnboardError(
            f"the inventory's servers use the default {DEFAULT_KNOWN_HOSTS}; set "
            "`known_hosts` in the inventory before onboarding with --known-hosts"
        )
    return _resolve(req.known_hosts, base), True


def _credentials_entry(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = (data.get("credentials") or {}).get(name)
    if entry is not None and not isinstance(entry, dict):
        raise OnboardError(f"credentials.{name} in the inventory is not a mapping")
    return entry


def _key_path(req: OnboardRequest, creds: dict[str, Any] | None, base: Path) -> Path:
    existing = creds.get("key_file") if creds else None
    if creds is not None and not existing:
        raise OnboardError(
            f"credentials.{req.credentials} has no key_file; pass --credentials NAME to create "
            "a key-based credentials entry"
        )
    if req.key and existing and _resolve(existing, base) != _resolve(req.key, base):
        raise OnboardError(
            f"credentials.{req.credentials} already uses key {existing}; pass --credentials NAME "
            f"to deploy {req.key} under another credentials entry"
        )
    return _resolve(req.key or existing or DEFAULT_KEY_NAME, base)


def _passphrase(creds: dict[str, Any] | None) -> Secret | None:
    if not creds:
        return None
    if creds.get("passphrase_env"):
        value = os.environ.get(str(creds["passphrase_env"]))
        if value is None:
            raise OnboardError(f"environment variable {creds['passphrase_env']} is not set")
        return Secret(value)
    if creds.get("passphrase_file"):
        return Secret(Path(str(creds["passphrase_file"])).read_text().rstrip("\n"))
    return None


@contextmanager
def _connect(
    req: OnboardRequest,
    user: str,
    known_hosts: Path,
    jump: paramiko.SSHClient | None,
    *,
    password: Secret | None = None,
    pkey: paramiko.PKey | None = None,
    trust: bool,
) -> Iterator[paramiko.SSHClient]:
    """An SSH client logged in to the target, host key checked against known_hosts."""
    where = f"{user}@{req.host}:{req.port}"
    client = paramiko.SSHClient()
    known = load_known_hosts(known_hosts)
    for name in known.keys():
        for key_type in known[name].keys():
            client.get_host_keys().add(name, key_type, known[name][key_type])
    client.set_missing_host_key_policy(
        PinningPolicy(known_hosts, known, trust_on_first_use=trust and req.trust_on_first_use)
    )
    try:
        sock = None
        if jump is not None:
            transport = jump.get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", (req.host, req.port), ("127.0.0.1", 0))
        client.connect(
            req.host,
            req.port,
            username=user,
            password=password.reveal() if password is not None else None,
            pkey=pkey,
            sock=sock,
            timeout=req.timeout_seconds,
            banner_timeout=req.timeout_seconds,
            auth_timeout=req.timeout_seconds,
            look_for_keys=False,
            allow_agent=False,
        )
    except HostKeyRefused as exc:
        client.close()
        raise OnboardError(str(exc)) from exc
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise OnboardError(
            f"host key of {req.host}:{req.port} has CHANGED from the one pinned in {known_hosts} "
            f"(now {exc.key.get_name()} {exc.key.fingerprint}); refusing to log in"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        how = "password" if password is not None else "key"
        raise OnboardError(f"{how} login as {where} was rejected") from None
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        raise OnboardError(f"could not connect to {where}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _jump_client(
    data: dict[str, Any], req: OnboardRequest, known_hosts: Path
) -> Iterator[paramiko.SSHClient]:
    """Log in to the jump server named in the inventory with its own (key) credentials."""
    servers = [s for s in data.get("servers") or [] if isinstance(s, dict)]
    entry = next((s for s in servers if s.get("name") == req.jump), None)
    if entry is None:
        raise OnboardError(f"jump server {req.jump!r} is not in {req.inventory}")
    if entry.get("jump"):
        raise OnboardError(f"jump server {req.jump!r} has a jump of its own; onboard supports one")
    defaults = data.get("defaults") or {}
    cred_name = entry.get("credentials") or defaults.get("credentials") or DEFAULT_CREDENTIALS
    creds = _credentials_entry(data, str(cred_name))
    if not creds or not creds.get("key_file"):
        raise OnboardError(f"jump server {req.jump!r} has no key_file credentials in the inventory")
    key = load_private_key(_resolve(creds["key_file"], req.inventory.parent), _passphrase(creds))
    jump_req = OnboardRequest(
        name=str(req.jump),
        host=str(entry.get("host")),
        password=Secret(""),
        inventory=req.inventory,
        port=int(entry.get("port") or defaults.get("port") or 22),
        timeout_seconds=req.timeout_seconds,
    )
    user = str(entry.get("user") or defaults.get("user") or DEFAULT_USER)
    with _connect(jump_req, user, known_hosts, None, pkey=key, trust=False) as client:
        yield client


def _deploy(client: paramiko.SSHClient, line: str) -> bool:
    """Append `line` to ~/.ssh/authorized_keys; True if added, False if already there."""
    try:
        stdin, stdout, stderr = client.exec_command(DEPLOY_COMMAND, timeout=30)
        stdin.write(line + "\n")
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace").strip()
        err = stderr.read().decode(errors="replace").strip()
        status = stdout.channel.recv_exit_status()
    except (OSError, paramiko.SSHException) as exc:
        raise OnboardError(f"deploying the key failed: {exc}") from exc
    if status != 0 or out not in ("added", "present"):
        raise OnboardError(f"deploying the key failed (exit {status}): {err[:500] or out[:500]}")
    return out == "added"


def read_password(env: str | None, file: Path | None, prompt: bool) -> Secret:
    """The one-time password from an environment variable, a file or the terminal."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise OnboardError(f"environment variable {env} is not set or empty")
        return Secret(value)
    if file:
        try:
            value = file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise OnboardError(f"password file {file} could not be read: {exc.strerror}") from None
        if not value:
            raise OnboardError(f"password file {file} is empty")
        return Secret(value)
    if prompt:
        return Secret(getpass.getpass("SSH password (used once, never stored): "))
    raise OnboardError(
        "give the one-time password with --password-env, --password-file or --password-prompt"
    )


__all__ = [
    "KeyProblem",
    "OnboardError",
    "OnboardRequest",
    "OnboardResult",
    "load_inventory",
    "onboard",
    "read_password",
    "upsert_server",
]
