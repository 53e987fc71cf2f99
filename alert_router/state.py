"""Per-app state: the current config, store, metrics, notifiers and background workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alert_router.config import RouterConfig, load_config
from alert_router.dispatch.dispatcher import Dispatcher
from alert_router.metrics import RouterMetrics
from alert_router.outbox import Outbox
from alert_router.runner import Runner
from alert_router.store import Store

log = logging.getLogger(__name__)
NotifierFactory = Callable[[dict[str, Any], str, dict[str, Any]], Sequence[Any]]


def default_notifier_factory(receiver: dict[str, Any], path: str,
                             global_config: dict[str, Any]) -> Sequence[Any]:
    """Build a receiver's notifiers with the notify package."""
    from alert_router.notify import build_notifiers

    return build_notifiers(receiver, path=path, global_config=global_config)


@dataclass
class RouterState:
    """Everything one app instance owns; reload swaps `config` and `notifiers` at once."""

    config: RouterConfig
    config_path: Path | None
    store: Store
    metrics: RouterMetrics
    notifier_factory: NotifierFactory
    started_at: float = field(default_factory=time.time)
    notifiers: dict[str, Sequence[Any]] = field(default_factory=dict)
    dispatcher: Dispatcher | None = None
    outbox: Outbox | None = None
    runner: Runner | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0  # the store's config generation this process has loaded

    def build_notifiers(self, config: RouterConfig) -> dict[str, Sequence[Any]]:
        """Notifiers for every receiver of `config`."""
        names = list(config.receivers)
        return {name: self.notifier_factory(config.receivers[name], f"receivers[{i}]",
                                            config.global_config)
                for i, name in enumerate(names)}

    def notifiers_for(self, receiver: str) -> Sequence[Any]:
        return self.notifiers.get(receiver, ())

    def current_config(self) -> RouterConfig:
        return self.config

    def reload(self, *, announce: bool = True) -> None:
        """Re-read the config file; on any error keep the old config and raise.

        With announce, other processes on the same store (gunicorn workers) reload too.
        """
        if self.config_path is None:
            raise RuntimeError("no config file to reload (the app was given a config object)")
        try:
            config = load_config(self.config_path)
            notifiers = self.build_notifiers(config)
        except Exception:
            self.metrics.reload_ok.set(0)
            raise
        with self.lock:
            self.config, self.notifiers = config, notifiers
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set(time.time())
        if announce:
            self.generation = self.store.bump_generation("config")

    def follow_reloads(self) -> None:
        """Reload when another process announced a reload (called by the runner loop)."""
        current = self.store.generation("config")
        if current == self.generation or self.config_path is None:
            return
        self.generation = current
        try:
            self.reload(announce=False)
        except Exception as exc:  # noqa: BLE001 - keep running on the old config
            log.error("reload announced by another process failed: %s", exc)

    def wake(self) -> None:
        if self.runner is not None:
            self.runner.wake()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        elif self.outbox is not None:
            self.outbox.close()
        self.store.close()
