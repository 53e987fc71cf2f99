"""Per-app state: the current config, store, metrics, notifiers and background workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alert_router.background import Runner
from alert_router.config import RouterConfig, load_config, load_config_text
from alert_router.dispatch.dispatcher import Dispatcher
from alert_router.metrics import RouterMetrics
from alert_router.notify.base import Notifier
from alert_router.outbox import Outbox
from alert_router.store import Store

log = logging.getLogger(__name__)
NotifierFactory = Callable[[dict[str, Any], str, dict[str, Any]], Sequence[Notifier]]


def default_notifier_factory(
    receiver: dict[str, Any], path: str, global_config: dict[str, Any]
) -> Sequence[Notifier]:
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
    notifiers: dict[str, Sequence[Notifier]] = field(default_factory=dict)
    dispatcher: Dispatcher | None = None
    outbox: Outbox | None = None
    runner: Runner | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0  # the store's config generation this process has loaded

    def build_notifiers(self, config: RouterConfig) -> dict[str, Sequence[Notifier]]:
        """Notifiers for every receiver of `config`."""
        names = list(config.receivers)
        return {
            name: self.notifier_factory(
                config.receivers[name], f"receivers[{i}]", config.global_config
            )
            for i, name in enumerate(names)
        }

    def notifiers_for(self, receiver: str) -> Sequence[Notifier]:
        return self.notifiers.get(receiver, ())

    def current_config(self) -> RouterConfig:
        return self.config

    def reload(self, *, announce: bool = True) -> None:
        """Re-read the config file; on any error keep the old config and raise.

        With announce, other processes on the same store (gunicorn workers) reload too.
        """
        path = self.config_path
        if path is None:
            raise RuntimeError("no config file to reload (the app was given a config object)")
        self._apply(lambda: load_config(path))
        if announce:
            self.generation = self.store.publish_config(self.config.original)

    def _apply(self, load: Callable[[], RouterConfig]) -> None:
        try:
            config = load()
            notifiers = self.build_notifiers(config)
        except Exception:
            self.metrics.reload_ok.set(0)
            raise
        with self.lock:
            self.config, self.notifiers = config, notifiers
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set(time.time())

    def follow_reloads(self) -> None:
        """Load the config another process's reload accepted (called by the runner loop).

        The published text is used rather than the file, so every process runs the same
        config even if the file was edited again before this one noticed.
        """
        if self.config_path is None or self.store.generation("config") == self.generation:
            return
        published = self.store.published_config()
        if published is None:
            return
        generation, text = published
        path = self.config_path
        self.generation = generation
        try:
            self._apply(lambda: load_config_text(text, path))
        except Exception as exc:  # noqa: BLE001 - keep running on the old config
            log.error("config published by another process's reload failed here: %s", exc)

    def wake(self) -> None:
        if self.runner is not None:
            self.runner.wake()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        elif self.outbox is not None:
            self.outbox.close()
        self.store.close()
