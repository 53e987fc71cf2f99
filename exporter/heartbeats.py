"""Last successful contact per server and source ("ssh" probe or "push" from an agent)."""

from __future__ import annotations

import threading
from typing import Any

SOURCES = ("ssh", "push")


class HeartbeatStore:
    """Thread-safe map (server, source) → unix timestamp, plus pushed agent metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[tuple[str, str], float] = {}
        self._pushed: dict[str, dict[str, Any]] = {}
        self._agents: dict[str, dict[str, str]] = {}

    def record(
        self,
        server: str,
        source: str,
        timestamp: float,
        metrics: dict[str, Any] | None = None,
        agent: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            key = (server, source)
            if timestamp > self._beats.get(key, float("-inf")):
                self._beats[key] = timestamp
            if metrics is not None:
                self._pushed[server] = metrics
            if agent is not None:
                self._agents[server] = agent

    def agents(self) -> dict[str, dict[str, str]]:
        """The version and host facts each pushing agent last sent."""
        with self._lock:
            return dict(self._agents)

    def snapshot(self) -> tuple[dict[tuple[str, str], float], dict[str, dict[str, Any]]]:
        with self._lock:
            return dict(self._beats), dict(self._pushed)

    def forget_except(self, servers: set[str]) -> None:
        """Drop servers removed from the inventory (after a reload)."""
        with self._lock:
            self._beats = {k: v for k, v in self._beats.items() if k[0] in servers}
            self._pushed = {k: v for k, v in self._pushed.items() if k in servers}
            self._agents = {k: v for k, v in self._agents.items() if k in servers}
