"""A runner factory for ExporterApp that records what the production runner is asked to run.

Tests inject it (`ExporterApp(..., runner=recorder)`) to see the scripts a real
probe sends and when a server's command has started, instead of reading the
app's private state.
"""

from __future__ import annotations

import threading

from exporter.config import Inventory, Server
from exporter.remote_shell import DEFAULT_MAX_OUTPUT
from exporter.runner import Runner, production_runner
from exporter.ssh_pool import CommandResult, SshPool


class RecordingRunner:
    """Both the factory the app calls once and the runner it then uses."""

    def __init__(self) -> None:
        self._inner: Runner | None = None
        self._lock = threading.Lock()
        self._started: dict[str, threading.Event] = {}
        self.scripts: list[tuple[str, str]] = []

    def __call__(self, inventory: Inventory, pool: SshPool) -> Runner:
        self._inner = production_runner(inventory, pool)
        return self

    def started(self, server: str) -> threading.Event:
        """Set once a command for `server` has been handed to the production runner."""
        with self._lock:
            return self._started.setdefault(server, threading.Event())

    def scripts_for(self, server: str) -> list[str]:
        with self._lock:
            return [script for name, script in self.scripts if name == server]

    def run(
        self,
        server: Server,
        command: str,
        deadline: float,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
        prelude: str = "",
    ) -> CommandResult:
        assert self._inner is not None, "the app has not built its runner yet"
        with self._lock:
            self.scripts.append((server.name, command))
        self.started(server.name).set()
        return self._inner.run(server, command, deadline, max_output=max_output, prelude=prelude)

    def connection_id(self, server: Server) -> int | None:
        assert self._inner is not None, "the app has not built its runner yet"
        return self._inner.connection_id(server)
