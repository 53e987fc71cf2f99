"""What one router process does under gunicorn: serve requests, dispatch, or both.

With two or more gunicorn workers, KeepAliveWorker makes one of them the dispatcher: it
serves no request and runs the dispatcher and outbox. The others serve requests only, so
request threads never wait for the interpreter lock the dispatcher's merges hold. A
request worker still stands by: if no live process has held the dispatcher lease for a few
seconds (the dispatcher worker hangs, or gunicorn could not start another), it takes the
lease itself, so alerts keep flowing. With one worker, that worker does both.

Request workers wake the dispatcher worker through a pipe the gunicorn master creates
before it forks them: one byte per wake, never blocking (a full pipe already wakes it).
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from enum import Enum

ROLE_ENV = "STACKSENSE_ROUTER_ROLE"
WAKE_FD_ENV = "STACKSENSE_ROUTER_WAKE_FD"


class Role(Enum):
    ALL = "all"  # serve and dispatch (one process, or the app outside gunicorn)
    HTTP = "http"  # serve; dispatch only if the dispatcher worker is gone
    DISPATCHER = "dispatcher"  # dispatch; serve nothing


def current_role() -> Role:
    """This process's role, as its gunicorn worker set it (ALL when it set none)."""
    raw = os.environ.get(ROLE_ENV, "")
    try:
        return Role(raw) if raw else Role.ALL
    except ValueError:
        return Role.ALL


class WakePipe:
    """One pipe shared by every worker of a gunicorn master (both ends non-blocking)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    @classmethod
    def create(cls) -> WakePipe:
        read_fd, write_fd = os.pipe()
        for fd in (read_fd, write_fd):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, True)
        return cls(read_fd, write_fd)

    def export(self) -> str:
        """The form $STACKSENSE_ROUTER_WAKE_FD carries into a worker: `read,write`."""
        return f"{self.read_fd},{self.write_fd}"

    @classmethod
    def from_environment(cls) -> WakePipe | None:
        raw = os.environ.get(WAKE_FD_ENV, "")
        read_text, _, write_text = raw.partition(",")
        if not (read_text.isdigit() and write_text.isdigit()):
            return None
        return cls(int(read_text), int(write_text))

    def wake(self) -> None:
        """Tell the dispatcher worker there is work; never blocks, never fails a request."""
        try:
            os.write(self.write_fd, b"\0")
        except (BlockingIOError, OSError):  # full: a wake is already pending
            pass

    def listen(self, on_wake: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Call on_wake whenever a request worker wrote, on a thread, until `stop` is set."""

        def loop() -> None:
            poller = select.poll()
            poller.register(self.read_fd, select.POLLIN)
            while not stop.is_set():
                if not poller.poll(500):
                    continue
                try:
                    while os.read(self.read_fd, 4096):  # drain: one wake covers them all
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
                on_wake()

        thread = threading.Thread(target=loop, name="router-wake-pipe", daemon=True)
        thread.start()
        return thread
