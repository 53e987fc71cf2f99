"""Fleet operations on `servers.yml`: add, remove, suspend, resume, push tokens, CSV import.

One implementation behind both `stacksense servers ...` and the exporter's
`/api/v1/servers` API, so both validate alike. Every change:

1. takes an exclusive lock beside the inventory (the CLI and the API may edit at once),
2. builds the new inventory as data and validates it whole with the exporter's own
   loader (`config.parse_inventory`): what is written is what the exporter will load,
3. edits the file as text (`inventory_edit`), keeping comments and order.

The caller then reloads the exporter (the CLI over `POST /-/reload`, the API in
process). Nothing here builds a remote command from a request: the only remote
commands are the fixed login check and the fixed key-removal script, whose one
parameter (a public key) is checked to be base64 first.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import fcntl
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.config import ConfigError, Inventory, parse_inventory
from exporter.errors import ProbeFailure
from exporter.inventory_edit import (
    InventoryEditError,
    load_inventory,
    remove_server,
    replace_server,
    upsert_server,
)
from exporter.push import hash_token

SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")
# What an added entry may carry (the rest of a server's keys are set by editing the file).
ENTRY_KEYS = {
    "name",
    "host",
    "port",
    "user",
    "credentials",
    "module",
    "labels",
    "jump",
    "mode",
    "trust_on_first_use",
}
LOGIN_CHECK_SECONDS = 15.0

# Removes one key (type and base64 given as awk variables) from ~/.ssh/authorized_keys,
# keeping the file's inode and modes (the copy is written back with cat). No `exit`:
# it runs as a function of the shell kept on the connection.
_REMOVE_KEY = (
    'f="$HOME/.ssh/authorized_keys"; '
    'if [ ! -f "$f" ]; then echo absent; else '
    "n=$(awk -v t='{type}' -v b='{b64}' "
    "'{{for (i = 1; i < NF; i++) if ($i == t && $(i+1) == b) c++}} END {{print c+0}}' \"$f\"); "
    'if [ "$n" = 0 ]; then echo absent; else '
    "awk -v t='{type}' -v b='{b64}' "
    "'{{for (i = 1; i < NF; i++) if ($i == t && $(i+1) == b) next; print}}' \"$f\" "
    '> "$f.stacksense-tmp" && cat "$f.stacksense-tmp" > "$f" && rm -f "$f.stacksense-tmp" '
    "&& echo removed; fi; fi"
)


class FleetError(ValueError):
    """A fleet operation was refused; the message says what is wrong (never a secret)."""


class NotFound(FleetError):
    """No server of that name in the inventory."""


def normalize_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A server entry from a request, a CSV row or the command line, checked field by field."""
    if not isinstance(raw, Mapping):
        raise FleetError("expected an object with name and host")
    unknown = sorted(set(raw) - ENTRY_KEYS)
    if unknown:
        raise FleetError(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(ENTRY_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
        raise FleetError(f"name: {name!r} is not a server name (letters, digits, '.', '_', '-')")
    mode = raw.get("mode", "ssh")
    if mode not in ("ssh", "push"):
        raise FleetError(f"mode: expected ssh or push, got {mode!r}")
    entry: dict[str, Any] = {"name": name}
    host = raw.get("host")
    if mode == "ssh" or host is not None:
        if (
            not isinstance(host, str)
            or not host
            or host.startswith("-")
            or any(c.isspace() for c in host)
        ):
            raise FleetError(f"host: {host!r} is not a host name or address")
        entry["host"] = host
    if "port" in raw and raw["port"] not in (None, ""):
        port = raw["port"]
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise FleetError(f"port: expected 1-65535, got {raw['port']!r}")
        entry["port"] = port
    for key in ("user", "credentials", "module", "jump"):
        value = raw.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or any(c.isspace() for c in value):
            raise FleetError(f"{key}: expected a word, got {value!r}")
        entry[key] = value
    labels = raw.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise FleetError("labels: expected an object of name: value")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise FleetError(f"labels.{key}: not a valid Prometheus label name")
        if not isinstance(value, str):
            raise FleetError(f"labels.{key}: expected a string value")
    if labels:
        entry["labels"] = dict(labels)
    if raw.get("trust_on_first_use") is True:
        entry["trust_on_first_use"] = True
    if mode == "push":
        entry["mode"] = "push"
    return entry


@dataclass
class ImportRow:
    line: int
    name: str
    outcome: str  # added, updated, unchanged, failed
    reason: str = ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def failed(self) -> list[ImportRow]:
        return [r for r in self.rows if r.outcome == "failed"]


class Fleet:
    """Edits one inventory file; `login_check` may be replaced (tests, dry runs)."""

    def __init__(self, inventory_path: Path) -> None:
        self.path = inventory_path

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _data(self) -> dict[str, Any]:
        try:
            return load_inventory(self.path)
        except InventoryEditError as exc:
            raise FleetError(str(exc)) from None

    def _validate(self, data: dict[str, Any]) -> Inventory:
        try:
            return parse_inventory(data, base=self.path.parent.resolve())
        except ConfigError as exc:
            raise FleetError(f"the inventory would be invalid: {exc}") from None

    @staticmethod
    def _entry(data: dict[str, Any], name: str) -> dict[str, Any]:
        for item in data.get("servers") or []:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise NotFound(f"no server named {name!r} in the inventory")

    def entries(self) -> list[dict[str, Any]]:
        return [s for s in self._data().get("servers") or [] if isinstance(s, dict)]

    # ------------------------------------------------------------ operations

    def add(self, raw: Mapping[str, Any], *, check_login: bool = True) -> str:
        """Add or update a server whose key is already authorized; added/updated/unchanged.

        Before writing, an SSH server is logged in to with the inventory's credentials
        (as the exporter would), so a server that cannot be probed is never written.
        """
        entry = normalize_entry(raw)
        with self._locked():
            data = self._data()
            wanted = copy.deepcopy(data)
            servers = wanted.setdefault("servers", []) if wanted.get("servers") else []
            wanted["servers"] = servers
            old = next(
                (s for s in servers if isinstance(s, dict) and s.get("name") == entry["name"]), None
            )
            merged = {**(old or {}), **entry}
            if old == merged:
                return "unchanged"
            if old is None:
                servers.append(merged)
            else:
                servers[servers.index(old)] = merged
            inventory = self._validate(wanted)
            if check_login and merged.get("mode", "ssh") == "ssh":
                check_ssh_login(inventory, entry["name"])
            try:
                upsert_server(self.path, merged, credentials=("", None), known_hosts=None)
            except InventoryEditError as exc:
                raise FleetError(str(exc)) from None
            return "added" if old is None else "updated"

    def remove(self, name: str, *, remove_key: bool = False) -> str:
        """Remove a server; with `remove_key`, first take the key off the host (or fail)."""
        with self._locked():
            data = self._data()
            self._entry(data, name)
            if len(data.get("servers") or []) == 1 and not data.get("allow_empty"):
                # The exporter refuses an inventory that would empty the fleet (a truncated
                # save must not); removing the last server on purpose says so in the file.
                raise FleetError(
                    f"{name!r} is the last server: the exporter refuses an empty "
                    "inventory unless it says `allow_empty: true`; add that line "
                    "first if this is what you want"
                )
            note = ""
            if remove_key:
                inventory = self._validate(data)
                note = remove_authorized_key(inventory, name)
            wanted = copy.deepcopy(data)
            wanted["servers"] = [
                s
                for s in wanted.get("servers") or []
                if not (isinstance(s, dict) and s.get("name") == name)
            ]
            self._validate({**wanted, "allow_empty": True})
            try:
                remove_server(self.path, name)
            except InventoryEditError as exc:
                raise FleetError(str(exc)) from None
            return "removed" + (f" (key {note} on the host)" if note else "")

    def set_suspended(self, name: str, suspended: bool) -> str:
        with self._locked():
            data = self._data()
            entry = dict(self._entry(data, name))
            if bool(entry.get("suspended", False)) == suspended:
                return "already suspended" if suspended else "not suspended"
            if suspended:
                entry["suspended"] = True
            else:
                entry.pop("suspended", None)
            self._write_entry(data, entry)
            return "suspended" if suspended else "resumed"

    def new_push_token(self, name: str) -> str:
        """A new random push token for `name`; only its hash is written. Returned once."""
        token = secrets.token_urlsafe(32)
        with self._locked():
            data = self._data()
            entry = dict(self._entry(data, name))
            for key in ("push_token_env", "push_token_file"):
                entry.pop(key, None)
            entry["push_token_hash"] = hash_token(token)
            self._write_entry(data, entry)
        return token

    def _write_entry(self, data: dict[str, Any], entry: dict[str, Any]) -> None:
        wanted = copy.deepcopy(data)
        wanted["servers"] = [
            entry if isinstance(s, dict) and s.get("name") == entry["name"] else s
            for s in wanted.get("servers") or []
        ]
        self._validate(wanted)
        try:
            replace_server(self.path, entry)
        except InventoryEditError as exc:
            raise FleetError(str(exc)) from None

    def import_csv(
        self,
        text: str,
        *,
        progress: Callable[[int, int, ImportRow], None] | None = None,
        onboard_row: Callable[[dict[str, Any], str], str] | None = None,
    ) -> ImportReport:
        """Add every row of a CSV (header: name,host[,port,user,credentials,module,labels,
        mode,password_env,password_file]); safe to re-run: unchanged rows are skipped.

        `labels` is `k=v;k2=v2`. A row with a password (from an environment variable or a
        file, never in the CSV itself) is onboarded (`onboard_row`); the others must
        already accept the inventory's key.
        """
        report = ImportReport()
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise FleetError("the CSV needs a header line with at least name and host")
        allowed = {*ENTRY_KEYS - {"trust_on_first_use"}, "password_env", "password_file"}
        unknown = [f for f in reader.fieldnames if f not in allowed]
        if unknown:
            raise FleetError(
                f"CSV column {unknown[0]!r} is unknown (allowed: {', '.join(sorted(allowed))})"
            )
        rows = list(reader)
        for i, row in enumerate(rows):
            line = i + 2
            name = (row.get("name") or "").strip()
            try:
                raw = _row_entry(row)
                password = _row_password(row)
                if password is not None and onboard_row is not None:
                    outcome = onboard_row(raw, password)
                else:
                    outcome = self.add(raw)
                result = ImportRow(line, name, outcome)
            except (FleetError, ProbeFailure, OSError) as exc:
                result = ImportRow(line, name, "failed", _reason(exc))
            report.rows.append(result)
            if progress is not None:
                progress(i + 1, len(rows), result)
        return report


def _row_entry(row: Mapping[str, str | None]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        k: (v or "").strip() for k, v in row.items() if k in ENTRY_KEYS and k is not None
    }
    labels: dict[str, str] = {}
    for item in filter(None, (raw.pop("labels", "") or "").split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise FleetError(f"labels: {item!r} is not key=value")
        labels[key.strip()] = value.strip()
    if labels:
        raw["labels"] = labels
    return {k: v for k, v in raw.items() if v not in ("", None)}


def _row_password(row: Mapping[str, str | None]) -> str | None:
    import os

    env, file = (row.get("password_env") or "").strip(), (row.get("password_file") or "").strip()
    if env:
        value = os.environ.get(env)
        if not value:
            raise FleetError(f"password_env: environment variable {env} is not set")
        return value
    if file:
        try:
            return Path(file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise FleetError(f"password_file: cannot read {file}: {exc.strerror}") from None
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ProbeFailure):
        return f"{exc.reason}: {exc.short_message()}"
    return str(exc)


def _run_once(inventory: Inventory, name: str, command: str) -> str:
    """Run one fixed command on `name` with the exporter's own pool (same checks)."""
    from exporter.ssh_pool import SshPool  # paramiko only when a host is contacted

    server = inventory.servers[name]
    pool = SshPool(inventory)
    try:
        result = pool.run(server, command, time.monotonic() + LOGIN_CHECK_SECONDS)
    finally:
        pool.close()
    if result.exit_status != 0:
        raise ProbeFailure("command", f"{name}: exited with {result.exit_status}")
    return result.stdout.strip()


def check_ssh_login(inventory: Inventory, name: str) -> None:
    """Log in to `name` as the exporter would; raises ProbeFailure saying why not."""
    out = _run_once(inventory, name, "echo stacksense-ok")
    if not out.endswith("stacksense-ok"):
        raise ProbeFailure("command", f"{name}: the login check printed something else")


def remove_authorized_key(inventory: Inventory, name: str) -> str:
    """Take the server's credentials key off its ~/.ssh/authorized_keys; removed/absent."""
    from exporter.ssh_pool import load_private_key

    server = inventory.servers[name]
    creds = inventory.credentials[server.credentials]
    if creds.key_file is None:
        raise FleetError(f"{name}: its credentials {creds.name!r} have no key_file to remove")
    try:
        key = load_private_key(creds)
    except ProbeFailure as exc:
        raise FleetError(f"{name}: {exc.short_message()}") from None
    key_type, b64 = key.get_name(), key.get_base64()
    if not _BASE64.fullmatch(b64) or not re.fullmatch(r"[a-z0-9.@-]+", key_type):
        raise FleetError(f"{name}: unexpected public key format")
    try:
        out = _run_once(inventory, name, _REMOVE_KEY.format(type=key_type, b64=b64))
    except ProbeFailure as exc:
        raise FleetError(
            f"{name}: cannot remove the key from the host "
            f"({exc.reason}: {exc.short_message()}); run without --remove-key "
            "to remove the server from the inventory only"
        ) from None
    return "removed" if out.endswith("removed") else "was not present"


def dump_entry(entry: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(entry), sort_keys=False).strip()
