"""Background threads of one router process: the dispatcher loop and the outbox loop.

Only the process holding the store's "dispatcher" lease runs them, so several gunicorn
workers (or replicas on one database) never flush a group or send a notification twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from alert_router.dispatch.dispatcher import Dispatcher
from alert_router.outbox import Outbox
from alert_router.store import Store

log = logging.getLogger(__name__)
LEASE_TTL = 15.0
LEASE_RENEW = 5.0  # renew when less than TTL - this remains (a write transaction, not per step)
IDLE_WAIT = 0.5
# Requests that arrive within this gap share one dispatcher transaction. Its commit writes
# every page the new rows touched, so merging 300 single-alert requests at once costs about a
# third per alert of merging them 60 at a time (the batch-1 benchmark's CPU went there); the
# delay is far below any group_wait.
MIN_STEP_GAP = 0.25


def holder_dead(holder: str) -> bool:
    """Whether a lease holder is a process of this host that no longer runs (after a crash)."""
    host, _, rest = holder.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Runner:
    """Runs Dispatcher.step and Outbox.step on their own threads while this process leads."""

    def __init__(self, store: Store, dispatcher: Dispatcher, outbox: Outbox,
                 on_tick: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_tick = on_tick
        self.dispatcher = dispatcher
        self.outbox = outbox
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.leader = False
        self._lease_until = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._outbox_wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._dispatch_loop, "router-dispatch"),
                             (self._outbox_loop, "router-outbox")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._outbox_wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.outbox.close()

    def wake(self) -> None:
        """New alerts arrived: run the dispatcher soon (the leader's; others only renew)."""
        # Called on every request: skip the Event's lock when there is nothing to do.
        if self.leader and not self._wake.is_set():
            self._wake.set()

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            wait = IDLE_WAIT
            try:
                self.on_tick()
                if self.leader and now < self._lease_until - LEASE_TTL + LEASE_RENEW:
                    leading = True
                else:
                    leading = self.store.try_lease("dispatcher", self.holder, now, LEASE_TTL,
                                                   holder_dead)
                    self._lease_until = now + LEASE_TTL if leading else 0.0
                if leading and not self.leader:
                    # Whatever a dead leader had in flight is ours to send now.
                    released = self.store.release_claims()
                    log.info("took the dispatcher lease (%d in-flight notifications resumed)",
                             released)
                self.leader = leading
                if leading:
                    result = self.dispatcher.step(now)
                    if result.enqueued:
                        self._outbox_wake.set()
                    due = self.store.next_flush_at()
                    if due is not None:
                        wait = max(0.0, min(wait, due - time.time()))
            except Exception:  # noqa: BLE001 - the loop must survive and retry
                log.exception("dispatcher step failed")
            self._wake.wait(wait)
            self._wake.clear()
            self._stop.wait(MIN_STEP_GAP)

    def _outbox_loop(self) -> None:
        while not self._stop.is_set():
            wait = IDLE_WAIT
            try:
                if self.leader:
                    while self.outbox.step(time.time()) and not self._stop.is_set():
                        pass
                    due = self.store.next_outbox_attempt()
                    if due is not None:
                        wait = max(0.0, min(wait, due - time.time()))
            except Exception:  # noqa: BLE001 - the loop must survive and retry
                log.exception("outbox step failed")
            self._outbox_wake.wait(wait)
            self._outbox_wake.clear()
