"""`--check-config`: everything that can be checked without contacting a host.

Beyond the inventory's own validation (done at load): each server's key file
and certificate exist, are readable and parse (with the passphrase when one is
configured), the known_hosts file exists (unless every server pins on first
use), an agent-only credential has an agent socket, and the reload token file
is readable and not empty. Each problem is one line naming the server (or the
setting) and the path; no line ever carries a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from exporter.config import Credentials, Inventory
from exporter.errors import ProbeFailure
from exporter.ssh_pool import load_private_key


def _readable(path: Path) -> str | None:
    """Why `path` cannot be read as a file, or None."""
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a file"
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _credential_problems(creds: Credentials) -> list[str]:
    """Problems of one credentials entry, each naming the setting and the path."""
    where = f"credentials.{creds.name}"
    problems: list[str] = []
    if creds.key_file is not None:
        why = _readable(creds.key_file)
        if why:
            problems.append(f"{where}.key_file {creds.key_file} {why}")
        if creds.certificate_file is not None:
            why = _readable(creds.certificate_file)
            if why:
                problems.append(f"{where}.certificate_file {creds.certificate_file} {why}")
        if not problems:
            try:
                load_private_key(creds)
            except ProbeFailure as exc:
                # load_private_key's messages name the file and never the passphrase.
                problems.append(f"{where}: {exc}")
    if (
        creds.agent
        and not (creds.key_file or creds.password)
        and not os.environ.get("SSH_AUTH_SOCK")
    ):
        problems.append(f"{where}.agent: SSH_AUTH_SOCK is not set (no agent to ask)")
    return problems


def check_inventory(inventory: Inventory, reload_token_file: Path | None = None) -> list[str]:
    """One line per problem; an empty list means the configuration is usable."""
    lines: list[str] = []
    if reload_token_file is not None:
        why = _readable(reload_token_file)
        if why is None and not reload_token_file.read_text(errors="replace").strip():
            why = "is empty"
        if why:
            lines.append(f"--web.reload-token-file {reload_token_file} {why}")
    if inventory.local:
        return lines
    per_creds = {name: _credential_problems(c) for name, c in inventory.credentials.items()}
    for server in inventory.servers.values():
        for problem in per_creds.get(server.credentials, []):
            lines.append(f"server {server.name}: {problem}")
    tofu_only = all(s.trust_on_first_use for s in inventory.servers.values())
    if inventory.servers and not tofu_only:
        why = _readable(inventory.known_hosts)
        if why:
            needing = [s.name for s in inventory.servers.values() if not s.trust_on_first_use]
            names = ", ".join(needing[:5]) + (
                f" and {len(needing) - 5} more" if len(needing) > 5 else ""
            )
            lines.append(
                f"known_hosts {inventory.known_hosts} {why} (needed by servers "
                f"{names}: they do not trust on first use)"
            )
    return lines
