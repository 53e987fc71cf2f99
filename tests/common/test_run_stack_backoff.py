"""`make run` restarts a dead service after the shared backoff (stacksense_common.backoff)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_stack.py"


def run_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_stack_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class DeadProc:
    """A process that has exited with 1."""

    def poll(self) -> int:
        return 1


def test_restart_delays_follow_the_shared_backoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rs = run_stack()
    monkeypatch.setattr(rs, "RUN", tmp_path)
    clock = [1000.0]
    monkeypatch.setattr(rs.time, "monotonic", lambda: clock[0])
    svc = rs.Service("exporter", ["true"], "http://127.0.0.1:9/-/ready")
    svc.proc, svc.started_at = DeadProc(), clock[0]
    delays: list[float] = []

    def start(self: Any) -> None:  # the restart itself: the process dies again at once
        self.proc, self.started_at = DeadProc(), clock[0]

    monkeypatch.setattr(rs.Service, "start", start)
    stopping: list[bool] = []

    def tick(_: float) -> None:
        if svc.next_start is not None:
            delays.append(svc.next_start - clock[0])
            clock[0] = svc.next_start  # jump to the restart
        if len(delays) == 8:
            stopping.append(True)

    monkeypatch.setattr(rs.time, "sleep", tick)
    rs.supervise([svc], stopping)
    # Doubling from 1 s to the 60 s cap, each jittered down to no less than half.
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert svc.restarts == 7

    # A service that stayed up past STABLE_AFTER_SECONDS starts afresh.
    svc.failures, svc.next_start, stopping[:] = 5, None, []
    svc.proc = type("Up", (), {"poll": lambda self: None})()
    svc.started_at = clock[0] - rs.STABLE_AFTER_SECONDS - 1
    monkeypatch.setattr(rs.time, "sleep", lambda _: stopping.append(True))
    rs.supervise([svc], stopping)
    assert svc.failures == 0
