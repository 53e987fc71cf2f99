"""Host key verification against a known_hosts file, with opt-in trust on first use.

An unknown key is refused unless the server is marked trust_on_first_use, in
which case it is pinned (appended to known_hosts) and from then on verified
like any other. A key that differs from the pinned one is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

import paramiko

from exporter.errors import ProbeFailure


def host_entry(host: str, port: int) -> str:
    """The known_hosts name OpenSSH uses: `host` on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """Thread-safe view of one known_hosts file (re-read when it changes on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._keys = paramiko.HostKeys()

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._keys, self._mtime = paramiko.HostKeys(), None
            return
        if mtime != self._mtime:
            keys = paramiko.HostKeys()
            keys.load(str(self.path))
            self._keys, self._mtime = keys, mtime

    def verify(
        self,
        server_name: str,
        host: str,
        port: int,
        key: paramiko.PKey,
        *,
        trust_on_first_use: bool,
    ) -> None:
        """Accept `key` for host:port or raise ProbeFailure("host_key", ...)."""
        entry = host_entry(host, port)
        with self._lock:
            self._refresh()
            known = self._keys.lookup(entry)
            if known is None:
                if not trust_on_first_use:
                    raise ProbeFailure(
                        "host_key",
                        f"{server_name}: host key of {entry} is not in {self.path} "
                        f"({key.get_name()} {fingerprint(key)}); add it or set trust_on_first_use",
                        "host_key_unknown",
                    )
                self._pin(entry, key)
                return
            pinned = known.get(key.get_name())
            if pinned is not None and pinned == key:
                return
            expected = ", ".join(fingerprint(k) for k in known.values())
            raise ProbeFailure(
                "host_key",
                f"{server_name}: host key of {entry} changed (expected {expected}, got "
                f"{fingerprint(key)}); refusing to connect until {self.path} is fixed",
                "host_key_changed",
            )

    def preferred_key_types(self, host: str, port: int) -> list[str]:
        """Key types pinned for host:port, so negotiation picks a type we can verify."""
        with self._lock:
            self._refresh()
            known = self._keys.lookup(host_entry(host, port))
            return list(known.keys()) if known else []

    def _pin(self, entry: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{entry} {key.get_name()} {key.get_base64()}\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(line)
        self._keys.add(entry, key.get_name(), key)
        self._mtime = self.path.stat().st_mtime


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
