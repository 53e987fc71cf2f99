"""`make run`'s stack comes up on this machine, notifies a local sink, and is supervised."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.peers.util import free_port, port_open, wait_for

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("EXPORTER", "RULES", "ROUTER", "SINK", "PROMETHEUS")


class Output:
    """make run's combined output, read as it comes (the stack runs in the foreground)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def start_stack(tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, int], Output]:
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "STACKSENSE_RUN_DIR": str(tmp_path),
        **{f"STACKSENSE_{k}_PORT": str(v) for k, v in ports.items()},
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_stack.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, ports, Output(proc)


def stop_stack(proc: subprocess.Popen[str], out: Output) -> int:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=40)
    out.thread.join(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def test_run_stack_brings_up_everything_notifies_the_sink_and_restarts_a_dead_service(
    tmp_path: Path,
) -> None:
    proc, ports, out = start_stack(tmp_path)
    prom = f"http://127.0.0.1:{ports['PROMETHEUS']}"
    try:

        def query(expr: str) -> list[dict[str, object]]:
            body = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=2).json()
            result: list[dict[str, object]] = body["data"]["result"]
            return result

        # The local host is probed through /sd and the multi-target pattern...
        wait_for(
            lambda: query('node_load1{job="stacksense-probe"}'),
            timeout=90,
            interval=1,
            what="node_load1 from the local host",
        )
        # ...the rule engine decides its status from the heartbeat...
        wait_for(
            lambda: query('stacksense_server_status{status="online"} == 1'),
            timeout=90,
            interval=1,
            what="the local host online",
        )
        # ...Prometheus evaluates the pipeline's self-checks...
        groups = requests.get(f"{prom}/api/v1/rules", timeout=2).json()["data"]["groups"]
        assert any(g["name"] == "stacksense-pipeline" for g in groups)
        # ...and the engine's Watchdog reaches the router, and is notified to the local sink.
        router = f"http://127.0.0.1:{ports['ROUTER']}/api/v2/alerts"
        wait_for(
            lambda: [
                a
                for a in requests.get(router, timeout=2).json()
                if a["labels"]["alertname"] == "Watchdog"
            ],
            timeout=60,
            interval=1,
            what="Watchdog at the router",
        )
        sink = tmp_path / "notifications.jsonl"

        def notified() -> list[dict[str, object]]:
            if not sink.exists():
                return []
            return [json.loads(line) for line in sink.read_text().splitlines()]

        first = wait_for(notified, timeout=120, interval=1, what="a notification in the sink")
        assert first[0]["body"]["version"] == "4"  # type: ignore[index]

        # The console: the printed admin logs in and sees this machine in the fleet.
        admin = tmp_path / "console-admin"
        assert admin.stat().st_mode & 0o777 == 0o600
        name, password = admin.read_text().split()[:2]
        console = f"http://127.0.0.1:{ports['ROUTER']}/console"
        browser = requests.Session()
        page = browser.get(f"{console}/login", timeout=5)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        resp = browser.post(
            f"{console}/login",
            data={"name": name, "password": password, "csrf": csrf.group(1)},
            timeout=5,
        )
        assert resp.status_code == 200 and "/console/login" not in resp.url, resp.text[:500]
        fleet = wait_for(
            lambda: (t := browser.get(f"{console}/", timeout=10).text) and "online" in t and t,
            timeout=60,
            interval=2,
            what="the local host in the console's fleet",
        )
        assert "Console:" in out.text and "/console/" in out.text
        assert fleet

        # A service that dies is restarted and said so.
        exporter_pid = int(
            subprocess.check_output(
                [
                    "pgrep",
                    "-f",
                    f"stacksense-exporter --web.listen-address=127.0.0.1:{ports['EXPORTER']}",
                ],
                text=True,
            ).split()[0]
        )
        os.kill(exporter_pid, signal.SIGKILL)
        wait_for(
            lambda: "exporter: restarted" in out.text,
            timeout=30,
            interval=0.5,
            what="the exporter restarted",
        )
        assert "exporter: exited with -9" in out.text, out.text
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{ports['EXPORTER']}/-/ready", timeout=1).ok,
            timeout=30,
            interval=0.5,
            what="the restarted exporter ready",
        )
    finally:
        rc = stop_stack(proc, out)
    assert rc == 0, out.text
    for name in ("sink", "exporter", "router", "prometheus", "rules"):
        assert f"{name}" in out.text
    assert "FAILED" not in out.text, out.text


def test_a_service_that_cannot_start_stops_the_stack_with_its_reason(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = {name: free_port() for name in SERVICES}
        ports["EXPORTER"] = taken
        env = {
            **os.environ,
            "STACKSENSE_RUN_DIR": str(tmp_path),
            **{f"STACKSENSE_{k}_PORT": str(v) for k, v in ports.items()},
        }
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "run_stack.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "exporter" in failed[0], out
    assert "address already in use" in failed[0].lower(), out
    assert "StackSense is running" not in out
    assert time.monotonic() - started < 90
    # The services started before it were stopped.
    assert not port_open("127.0.0.1", ports["ROUTER"])
    assert not port_open("127.0.0.1", ports["SINK"])
