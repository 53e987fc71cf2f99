"""SSH keys for onboarding: client key generation, public key lines, known_hosts pinning.

paramiko cannot generate Ed25519 keys, so generation uses `cryptography` (a
paramiko dependency) and writes the private key in OpenSSH format, which both
paramiko and OpenSSH read.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stacksense_common.secret import Secret

# Key types a deployed authorized_keys line may carry (what paramiko can log in with).
ALLOWED_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    }
)
# A comment is pasted into nobody's shell, but it is kept to a harmless alphabet anyway so
# that the line stays safe wherever an operator copies it.
_COMMENT = re.compile(r"[A-Za-z0-9@._+:=,/-]{0,128}")


class KeyProblem(Exception):
    """A key file or public key line is unusable; the message says why."""


class HostKeyRefused(Exception):
    """The server's host key is unknown (without trust-on-first-use) or has changed."""


def generate_ed25519(path: Path, comment: str) -> str:
    """Write a new unencrypted Ed25519 private key (mode 0600) and return its public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    line = f"{public} {comment}".strip()
    validate_public_line(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite an existing key; the mode is set at creation, not after.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


def load_private_key(path: Path, passphrase: Secret | None = None) -> paramiko.PKey:
    """Load a private key of any type paramiko supports; errors name the file, not secrets."""
    try:
        return paramiko.PKey.from_path(
            path, password=passphrase.reveal() if passphrase is not None else None
        )
    except FileNotFoundError as exc:
        raise KeyProblem(f"key file {path} does not exist") from exc
    except paramiko.PasswordRequiredException as exc:
        raise KeyProblem(f"key file {path} is encrypted and no passphrase was given") from exc
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise KeyProblem(f"key file {path} could not be read: {type(exc).__name__}") from exc


def public_line(key: paramiko.PKey, comment: str) -> str:
    """The authorized_keys line for `key`, validated."""
    line = f"{key.get_name()} {key.get_base64()} {comment}".strip()
    validate_public_line(line)
    return line


def validate_public_line(line: str) -> tuple[str, str, str]:
    """Check `type base64 [comment]` strictly; return its parts or raise KeyProblem."""
    if "\n" in line or "\r" in line:
        raise KeyProblem("public key line must be a single line")
    parts = line.split(" ")
    if len(parts) not in (2, 3):
        raise KeyProblem("public key line must be 'TYPE BASE64 [COMMENT]' (no options)")
    key_type, b64 = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if key_type not in ALLOWED_KEY_TYPES:
        raise KeyProblem(f"public key type {key_type!r} is not one of {sorted(ALLOWED_KEY_TYPES)}")
    try:
        blob = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise KeyProblem("public key data is not valid base64") from exc
    # The blob starts with its own type name; a mismatch means a corrupted or forged line.
    if len(blob) < 4:
        raise KeyProblem("public key data is too short")
    (name_len,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + name_len].decode("ascii", "replace") != key_type:
        raise KeyProblem("public key data does not match its type")
    if not _COMMENT.fullmatch(comment):
        raise KeyProblem("public key comment may only contain letters, digits and @._+:=,/-")
    return key_type, b64, comment


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    """Read known_hosts (missing file = empty); a malformed file is an error naming it."""
    keys = paramiko.HostKeys()
    if path.exists():
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException) as exc:
            raise HostKeyRefused(f"known_hosts file {path} could not be read: {exc}") from exc
    return keys


def pin_host_key(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append one known_hosts line for `name`, creating the file (0644) if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    with open(path, "a") as out:
        out.write(f"{separator}{name} {key.get_name()} {key.get_base64()}\n")


class PinningPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, or pin them into known_hosts when trust-on-first-use is on.

    paramiko itself refuses a *changed* key (BadHostKeyException) before consulting
    this policy. A host that is known under another key type also lands here; that
    is treated as a change, never as a first use.
    """

    def __init__(self, known_hosts: Path, known: paramiko.HostKeys, *, trust_on_first_use: bool):
        self.known_hosts = known_hosts
        self.known = known
        self.trust_on_first_use = trust_on_first_use

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.known.lookup(hostname):
            raise HostKeyRefused(
                f"host key of {hostname} is not the one pinned in {self.known_hosts} "
                f"(server offered {key.get_name()}); refusing: remove the old line if the "
                "host was really re-installed"
            )
        if not self.trust_on_first_use:
            raise HostKeyRefused(
                f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not "
                f"in {self.known_hosts}; add it there or pass --trust-on-first-use to pin it"
            )
        pin_host_key(self.known_hosts, hostname, key)
        self.known.add(hostname, key.get_name(), key)
