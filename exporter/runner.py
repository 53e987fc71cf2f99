"""Where a probe's command runs: over SSH (the pool) or on this machine (embedded default)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Protocol

from exporter.config import Inventory, Server
from exporter.errors import ProbeFailure
from exporter.remote_shell import DEFAULT_MAX_OUTPUT
from exporter.ssh_pool import CommandResult, SshPool


class Runner(Protocol):
    """Runs the probe script on one server and says which connection it used."""

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult: ...

    def connection_id(self, server: Server) -> int | None: ...


RunnerFactory = Callable[[Inventory, SshPool], Runner]
"""Builds the app's runner from its first inventory and its connection pool."""


def production_runner(inventory: Inventory, pool: SshPool) -> Runner:
    """SSH through the pool; this machine's /bin/sh when there is no inventory (embedded)."""
    return LocalRunner() if inventory.local else SshRunner(pool)


class SshRunner:
    """Runs commands on remote servers through the connection pool."""

    def __init__(self, pool: SshPool) -> None:
        self.pool = pool

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult:
        return self.pool.run(server, command, deadline, max_output=max_output, prelude=prelude)

    def connection_id(self, server: Server) -> int | None:
        return self.pool.connection_id(server)


class LocalRunner:
    """Runs the same command with the local /bin/sh: the host the exporter runs on."""

    def connection_id(self, server: Server) -> int | None:
        return 0  # one machine, always the same: host facts are read once per process

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult:
        # The local command is only ever the exporter's own script, so its output is
        # checked after the fact rather than streamed against the limit.
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise ProbeFailure("timeout", f"{server.name}: deadline passed before the command ran")
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", prelude + "\n" + command],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProbeFailure("timeout", f"{server.name}: local command timed out") from None
        except OSError as exc:
            raise ProbeFailure(
                "command", f"{server.name}: cannot run /bin/sh: {exc.strerror}"
            ) from None
        if len(proc.stdout) > max_output:
            raise ProbeFailure(
                "command",
                f"{server.name}: output larger than {max_output} bytes (module max_output_bytes)",
                "output_too_large",
            )
        return CommandResult(proc.returncode, proc.stdout.decode("utf-8", "replace"))
