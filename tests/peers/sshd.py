"""Real OpenSSH sshd instances on loopback or inside network namespaces.

One `SshdKeys` bundle (host key, client keys, a CA for certificates) is made
per test session; each `sshd(...)` starts a server trusting it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.util import free_port, port_open, stop, wait_for

SSHD = "/usr/sbin/sshd"
PASSWORD_USER = "stacksense-test"
PASSWORD = "s3cret-Pa55word!"
KEY_PASSPHRASE = "correct horse battery staple"


def keygen(path: Path, passphrase: str = "", key_type: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-f", str(path), "-C", path.name],
        check=True,
    )
    return path


@dataclass
class SshdKeys:
    """Host key, client keys and a user CA, made once per test session."""

    root: Path
    host_key: Path
    client_key: Path  # no passphrase
    protected_key: Path  # KEY_PASSPHRASE
    cert_key: Path  # with cert_key.with_name(name + "-cert.pub")
    ca_key: Path

    @classmethod
    def create(cls, root: Path) -> SshdKeys:
        root.mkdir(parents=True, exist_ok=True)
        host_key = keygen(root / "host_ed25519")
        client_key = keygen(root / "client_ed25519")
        protected_key = keygen(root / "protected_ed25519", KEY_PASSPHRASE)
        ca_key = keygen(root / "user_ca")
        cert_key = keygen(root / "cert_ed25519")
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-s",
                str(ca_key),
                "-I",
                "stacksense-test",
                "-n",
                "root," + PASSWORD_USER,
                str(cert_key) + ".pub",
            ],
            check=True,
        )
        return cls(root, host_key, client_key, protected_key, cert_key, ca_key)

    def host_public_key(self) -> str:
        return Path(str(self.host_key) + ".pub").read_text()


def ensure_password_user() -> bool:
    """Create the local user used for password auth (root only). Returns availability."""
    if os.geteuid() != 0:
        return False
    if subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", PASSWORD_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n".encode(), check=True)
    return True


@dataclass
class Sshd:
    host: str
    port: int
    workdir: Path
    keys: SshdKeys
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    def known_hosts_line(self) -> str:
        """A known_hosts line for this server (port-qualified as OpenSSH writes it)."""
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        key_type, key_b64 = self.keys.host_public_key().split()[:2]
        return f"{name} {key_type} {key_b64}\n"

    def log(self) -> str:
        path = self.workdir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def write_config(
    workdir: Path, keys: SshdKeys, host: str, port: int, extra: list[str] | None = None
) -> Path:
    auth_dir = workdir / "authorized_keys"
    auth_dir.mkdir(parents=True, exist_ok=True)
    pubkeys = "".join(
        Path(str(k) + ".pub").read_text() for k in (keys.client_key, keys.protected_key)
    )
    for user in ("root", PASSWORD_USER):
        (auth_dir / user).write_text(pubkeys)
    (workdir / "user_ca.pub").write_text(Path(str(keys.ca_key) + ".pub").read_text())
    cfg = workdir / "sshd_config"
    lines = [
        f"Port {port}",
        f"ListenAddress {host}",
        f"HostKey {keys.host_key}",
        f"PidFile {workdir}/sshd.pid",
        f"AuthorizedKeysFile {auth_dir}/%u",
        f"TrustedUserCAKeys {workdir}/user_ca.pub",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin yes",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "MaxStartups 1000:30:1000",
        "MaxSessions 100",
        "AllowTcpForwarding yes",
        "LogLevel ERROR",
        # Debian's bash sources ~/.bashrc for ssh commands when SHLVL < 2; root's
        # .bashrc on these machines runs pyenv init (~100 processes, 125 ms/probe).
        # Production users should use a /bin/sh login shell (docs/collectors.md).
        # sshd keeps only the first SetEnv line, so the caller's are merged in.
        "SetEnv SHLVL=1 "
        + " ".join(e.split(None, 1)[1] for e in extra or [] if e.startswith("SetEnv ")),
        *(e for e in extra or [] if not e.startswith("SetEnv ")),
    ]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@contextmanager
def sshd(
    workdir: Path,
    keys: SshdKeys,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra: list[str] | None = None,
    netns: str | None = None,
) -> Iterator[Sshd]:
    """Start sshd (optionally inside network namespace `netns`) and wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", exist_ok=True)
    port = port or (22 if netns else free_port(host))
    cfg = write_config(workdir, keys, host, port, extra)
    cmd = [SSHD, "-D", "-e", "-f", str(cfg)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = Sshd(host, port, workdir, keys, proc, list(extra or []))

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(workdir / 'sshd.log').read_text()[-500:]}")
        if netns is None:
            return port_open(host, port)
        # Inside a namespace the address may not be reachable from here (its loopback).
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "ss", "-ltnH", f"sport = :{port}"],
            capture_output=True,
            text=True,
        )
        return bool(out.stdout.strip())

    try:
        wait_for(listening, timeout=10, what=f"sshd on {host}:{port}")
        yield server
    finally:
        stop(proc)
        log.close()


def sshd_available() -> bool:
    return shutil.which("ssh-keygen") is not None and os.path.exists(SSHD)
