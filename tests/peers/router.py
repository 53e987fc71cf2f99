"""The StackSense alert router as a real server process (gunicorn + KeepAliveWorker) on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.peers.util import free_port, kill_group, stop_group, wait_for

REPO = Path(__file__).resolve().parents[2]


class RouterExited(RuntimeError):
    """The router process ended before it was ready; carries its log."""

    def __init__(self, returncode: int, log: str) -> None:
        super().__init__(
            f"router exited with status {returncode} before it was ready:\n{log[-3000:]}"
        )
        self.returncode = returncode
        self.log = log


@dataclass
class RouterProcess:
    url: str
    port: int
    config_path: Path
    workdir: Path
    token: str
    threads: int = 4
    workers: int = 1
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self) -> None:
        env = {
            **os.environ,
            "STACKSENSE_ROUTER_CONFIG": str(self.config_path),
            "PYTHONPATH": str(REPO),
            **self.env,
        }
        log = open(self.workdir / "router.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "alert_router.cli.KeepAliveWorker",
                "--threads",
                str(self.threads),
                "-w",
                str(self.workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "2",
                "alert_router.wsgi:app",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        proc = self.proc
        wait_for(
            lambda: (
                proc.poll() is not None
                or requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            ),
            timeout=30,
            what=f"router ready (log: {self.workdir / 'router.log'})",
        )
        if proc.poll() is not None:
            self.proc = None
            raise RouterExited(proc.returncode, self.log())

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash."""
        kill_group(self.proc)
        self.proc = None

    def stop(self) -> None:
        stop_group(self.proc, 10)
        self.proc = None

    def log(self) -> str:
        path = self.workdir / "router.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def router(
    tmp: Path,
    config: dict[str, Any],
    *,
    token: str = "test-token",
    port: int | None = None,
    threads: int = 4,
    workers: int = 1,
    storage_url: str | None = None,
    password: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[RouterProcess]:
    """Start a router with `config` (auth and storage filled in when absent).

    storage_url: a PostgreSQL database (postgresql://user@host:port/db) instead of a SQLite
    file in `tmp`; its password goes to a private file named by storage.password_file.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tokens").write_text(token + "\n")
    config = {**config}
    config.setdefault("auth", {"tokens_file": str(tmp / "tokens")})
    if storage_url is not None:
        storage: dict[str, str] = {"url": storage_url}
        if password is not None:
            secret = tmp / "db-password"
            secret.touch(mode=0o600)
            secret.write_text(password + "\n")
            storage["password_file"] = str(secret)
        config.setdefault("storage", storage)
    config.setdefault("storage", {"path": str(tmp / "router.db")})
    config_path = tmp / "router.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = port or free_port()
    proc = RouterProcess(
        f"http://127.0.0.1:{port}", port, config_path, tmp, token, threads, workers, env=env or {}
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
