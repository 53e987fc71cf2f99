"""`make run`'s stack comes up on this machine: every service ready, data flowing end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.peers.util import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_run_stack_brings_up_everything_and_data_flows(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("EXPORTER", "RULES", "ROUTER", "PROMETHEUS")}
    env = {**os.environ, "STACKSENSE_RUN_DIR": str(tmp_path),
           **{f"STACKSENSE_{k}_PORT": str(v) for k, v in ports.items()}}
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_stack.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    prom = f"http://127.0.0.1:{ports['PROMETHEUS']}"
    try:
        def query(expr: str) -> list:
            body = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=2).json()
            return body["data"]["result"]

        # The local host is probed through /sd and the multi-target pattern...
        wait_for(lambda: query('node_load1{job="stacksense-probe"}'), timeout=90,
                 interval=1, what="node_load1 from the local host")
        # ...the rule engine decides its status from the heartbeat...
        wait_for(lambda: query('stacksense_server_status{status="online"} == 1'), timeout=90,
                 interval=1, what="the local host online")
        # ...and the engine's Watchdog reaches the router.
        router = f"http://127.0.0.1:{ports['ROUTER']}/api/v2/alerts"
        alerts = wait_for(lambda: [a for a in requests.get(router, timeout=2).json()
                                   if a["labels"]["alertname"] == "Watchdog"],
                          timeout=60, interval=1, what="Watchdog at the router")
        assert alerts[0]["status"]["state"] == "active"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    for name in ("exporter", "router", "prometheus", "rules"):
        assert f"{name}" in out and "FAILED" not in out, out
