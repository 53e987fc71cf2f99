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
LEASE_ENV = "STACKSENSE_ROUTER_LEADER_LEASE"  # seconds; tests shorten it
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


def leader_lease_ttl() -> float:
    """The leader lease's length: $STACKSENSE_ROUTER_LEADER_LEASE seconds, else LEASE_TTL."""
    raw = os.environ.get(LEASE_ENV, "")
    try:
        value = float(raw) if raw else LEASE_TTL
    except ValueError:
        log.error("%s=%r is not a number of seconds; using %gs", LEASE_ENV, raw, LEASE_TTL)
        return LEASE_TTL
    return max(0.5, value)


class Runner:
    """Runs Dispatcher.step and Outbox.pump on their own threads while this process leads.

    A third thread holds the lease: it renews it every third of its length whatever the
    other two are doing, so a long step never lets the lease lapse under a live leader.
    Each send is fenced: it starts only while this process's lease still runs (with a
    margin), so a process that lost the lease never sends.
    """

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        outbox: Outbox,
        on_tick: Callable[[], None] = lambda: None,
        *,
        lease_ttl: float | None = None,
    ) -> None:
        self.store = store
        self.on_tick = on_tick
        self.dispatcher = dispatcher
        self.outbox = outbox
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.lease_ttl = lease_ttl if lease_ttl is not None else leader_lease_ttl()
        self.leader = False
        self._lease_until = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._outbox_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        outbox.may_send = self.leading
        outbox.on_done = self._outbox_wake.set
        # A group held back for its diagnostics flushes as soon as they arrive.
        dispatcher.diagnostics.on_done = self._wake.set

    def start(self) -> None:
        for target, name in (
            (self._lease_loop, "router-lease"),
            (self._dispatch_loop, "router-dispatch"),
            (self._outbox_loop, "router-outbox"),
        ):
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

    def leading(self) -> bool:
        """Whether this process holds the lease now, with a margin before it runs out."""
        margin = min(1.0, self.lease_ttl / 4)
        return self.leader and time.time() < self._lease_until - margin

    def _lease_loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            try:
                before = None if self.leader else self.store.lease_holder("dispatcher")
                leading = self.store.try_lease(
                    "dispatcher", self.holder, now, self.lease_ttl, holder_dead
                )
                if leading and not self.leader:
                    # A dead leader's in-flight notifications are ours to send at once. A
                    # leader that was only late may still be sending them: its claims run
                    # out after delivery.lease instead, so nothing is sent twice.
                    released = 0
                    if before in (None, self.holder) or self.store.holder_gone(before, holder_dead):
                        if not self.outbox.busy():
                            released = self.store.release_claims()
                    log.info(
                        "took the dispatcher lease (%d in-flight notifications resumed)", released
                    )
                self._lease_until = now + self.lease_ttl if leading else 0.0
                if self.leader and not leading:
                    log.warning("lost the dispatcher lease to another process")
                self.leader = leading
                if leading:
                    self._wake.set()
                    self._outbox_wake.set()
            except Exception:  # noqa: BLE001 - the loop must survive; the lease lapses alone
                log.exception("renewing the dispatcher lease failed")
            self._stop.wait(self.lease_ttl / 3)

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            wait = IDLE_WAIT
            try:
                self.on_tick()
                if self.leading():
                    # Never waits for diagnostics: a group still waiting for them is
                    # flushed by a later step, so it delays no other group.
                    result = self.dispatcher.step(time.time(), wait=False)
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
                if self.leading():
                    self.outbox.pump(time.time())
                    due = self.store.next_outbox_attempt()
                    now = time.time()
                    # A due row whose receiver has no idle worker waits for on_done.
                    if due is not None and due > now:
                        wait = min(wait, due - now)
            except Exception:  # noqa: BLE001 - the loop must survive and retry
                log.exception("outbox step failed")
            self._outbox_wake.wait(wait)
            self._outbox_wake.clear()
