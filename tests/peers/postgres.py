"""A real PostgreSQL server for tests: initdb + pg_ctl in a temp dir, loopback, a free port.

Runs as the postgres user when started as root (PostgreSQL refuses to run as root). The
superuser `postgres` has a password (scram-sha-256 on TCP), so the router's password
handling is exercised for real.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.peers.util import free_port, wait_for

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: `make setup` installs "
    "them (apt-get install -y postgresql)"
)


def pg_bindir() -> Path:
    """The directory of initdb and pg_ctl; raises with INSTALL_HINT when absent."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError(INSTALL_HINT)
    return Path(candidates[-1]).parent


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    datadir: Path

    def url(self, db: str = "postgres") -> str:
        """A storage url without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def connect(self, db: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(db), password=self.password, autocommit=True)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL on 127.0.0.1; stop it and delete its files on exit.

    fsync=False (tests): commits are still commits, only a power cut could lose them.
    Benchmarks pass fsync=True to measure what production pays.
    """
    bindir = pg_bindir()
    tmp = Path(tempfile.mkdtemp(prefix="stacksense-pg-"))
    password = uuid.uuid4().hex
    datadir = tmp / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
    (tmp / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(tmp / "pw", entry.pw_uid, entry.pw_gid)
    port = free_port()
    log = tmp / "postgres.log"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={tmp / 'pw'}",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -k {tmp} "
        f"-c fsync={'on' if fsync else 'off'} -c max_connections=300 "
        "-c shared_buffers=32MB"
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    server = PostgresServer("127.0.0.1", port, "postgres", password, datadir)
    try:
        wait_for(
            lambda: server.connect().close() is None,
            timeout=30,
            what=f"postgres on port {port} (log: {log})",
        )
        yield server
    finally:
        subprocess.run(
            _as_postgres(
                [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)
