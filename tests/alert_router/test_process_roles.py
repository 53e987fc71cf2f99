"""Under gunicorn with several workers, one dispatches and serves nothing; the others serve.

The flows: the dispatcher worker dies (gunicorn starts another, which takes over), and the
dispatcher worker hangs so that gunicorn cannot replace it (a request worker takes over
once the lease has lapsed for a whole lease length, and nothing is sent twice).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import psutil
import pytest
import requests

from tests.peers.router import RouterProcess, router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = pytest.mark.slow

CONFIG_ROUTE = {"group_by": ["..."], "group_wait": "0s", "group_interval": "1s"}


def _lease_pid(proc: RouterProcess) -> int | None:
    with sqlite3.connect(proc.workdir / "router.db", timeout=5) as conn:
        row = conn.execute("SELECT holder, until FROM leases WHERE name = 'dispatcher'").fetchone()
    if row is None or row[1] <= time.time():
        return None
    return int(row[0].split("/")[1])


def _workers(proc: RouterProcess) -> set[int]:
    assert proc.proc is not None
    return {child.pid for child in psutil.Process(proc.proc.pid).children()}


def _post(proc: RouterProcess, name: str) -> None:
    response = requests.post(
        f"{proc.url}/api/v2/alerts",
        headers={**proc.auth, "Connection": "close"},  # new connections reach every worker
        json=[{"labels": {"alertname": name}}],
        timeout=10,
    )
    assert response.status_code == 200, response.text


def _dispatcher_pids(proc: RouterProcess) -> list[int]:
    return [
        int(line.split("worker ")[1].split()[0])
        for line in proc.log().splitlines()
        if "dispatches and serves no request" in line
    ]


def test_one_worker_dispatches_and_a_killed_one_is_replaced(tmp_path):
    with webhook_receiver() as hook:
        config = {
            "route": {"receiver": "hook", **CONFIG_ROUTE},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config, workers=3) as proc:
            wait_for(lambda: len(_dispatcher_pids(proc)) == 1, timeout=10, what="dispatcher")
            first = _dispatcher_pids(proc)[0]
            wait_for(lambda: _lease_pid(proc) == first, timeout=10, what="its lease")
            for i in range(6):
                _post(proc, f"Before{i}")
            wait_for(lambda: len(hook.alerts()) == 6, timeout=15, what="6 deliveries")
            # No request reached the dispatcher worker: it closed its listening sockets.
            listening = [c for c in psutil.Process(first).net_connections() if c.status == "LISTEN"]
            assert listening == []

            os.kill(first, signal.SIGKILL)
            wait_for(lambda: len(_dispatcher_pids(proc)) == 2, timeout=20, what="a new one")
            second = _dispatcher_pids(proc)[1]
            assert second != first and second in _workers(proc)
            wait_for(lambda: _lease_pid(proc) == second, timeout=10, what="lease taken over")
            _post(proc, "After")
            wait_for(lambda: len(hook.alerts()) == 7, timeout=15, what="7th delivery")
            time.sleep(2)  # a duplicate would arrive within a group interval
            names = sorted(a["labels"]["alertname"] for a in hook.alerts())
            assert names == sorted([*(f"Before{i}" for i in range(6)), "After"])


def test_a_request_worker_takes_over_from_a_hung_dispatcher_without_duplicates(tmp_path):
    with webhook_receiver() as hook:
        config = {
            "route": {"receiver": "hook", **CONFIG_ROUTE},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        env = {"STACKSENSE_ROUTER_LEADER_LEASE": "1.5"}
        with router(tmp_path, config, workers=2, env=env) as proc:
            wait_for(lambda: len(_dispatcher_pids(proc)) == 1, timeout=10, what="dispatcher")
            hung = _dispatcher_pids(proc)[0]
            wait_for(lambda: _lease_pid(proc) == hung, timeout=10, what="its lease")
            (server,) = _workers(proc) - {hung}
            os.kill(hung, signal.SIGSTOP)  # gunicorn replaces it only after its timeout
            try:
                _post(proc, "DuringHang")
                wait_for(lambda: len(hook.alerts()) == 1, timeout=20, what="delivery")
                assert _lease_pid(proc) == server
            finally:
                os.kill(hung, signal.SIGCONT)
            _post(proc, "AfterResume")
            wait_for(lambda: len(hook.alerts()) == 2, timeout=15, what="second delivery")
            time.sleep(3)  # the resumed worker must not send either alert again
            names = sorted(a["labels"]["alertname"] for a in hook.alerts())
            assert names == ["AfterResume", "DuringHang"]
            assert _lease_pid(proc) == server


def test_after_a_hup_one_of_the_new_workers_dispatches(tmp_path):
    with webhook_receiver() as hook:
        config = {
            "route": {"receiver": "hook", **CONFIG_ROUTE},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url}]}],
        }
        with router(tmp_path, config, workers=2) as proc:
            wait_for(lambda: len(_dispatcher_pids(proc)) == 1, timeout=10, what="dispatcher")
            old = _workers(proc)
            assert proc.proc is not None
            os.kill(proc.proc.pid, signal.SIGHUP)
            wait_for(
                lambda: not (_workers(proc) & old) and len(_workers(proc)) == 2,
                timeout=30,
                what="gunicorn replaced both workers",
            )
            assert len(_dispatcher_pids(proc)) == 2
            new = _dispatcher_pids(proc)[1]
            assert new in _workers(proc)
            # The old dispatcher worker exited: its successor takes the lease at once.
            wait_for(lambda: _lease_pid(proc) == new, timeout=5, what="lease taken over")
            _post(proc, "AfterHup")
            wait_for(lambda: len(hook.alerts()) == 1, timeout=10, what="delivery")
