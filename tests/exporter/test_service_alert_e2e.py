"""A service that stops raises ServiceDown at a notification sink, and resolves when it runs.

The whole pipeline as processes (tests/peers/stack.py): a real sshd host, the exporter,
Prometheus with `make run`'s intervals, the rule engine with the shipped conditions, the
router and a webhook sink. The service is a process match (systemd does not run here)
on a real process started and killed on this host. The test's conditions file replaces
the shipped ServiceDown only to shorten its `for:` (1m) to 5 s, and to show that a
user's condition of the same name takes over (its severity too).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from tests.peers.sshd import SshdKeys
from tests.peers.stack import Stack


def test_service_down_reaches_the_sink_and_resolves_when_the_process_returns(
    tmp_path: Path,
    ssh_keys: SshdKeys,
) -> None:
    name = f"ssv{uuid.uuid4().hex[:8]}"
    program = tmp_path / name
    shutil.copy("/bin/sleep", program)
    proc = subprocess.Popen([str(program), "600"])
    service_down = {
        "alert": "ServiceDown",
        "metric": "stacksense_service_up",
        "op": "==",
        "threshold": 0,
        "for": "5s",
        "severity": "critical",
        "annotations": {"summary": "Service {service} on {server} is down"},
    }
    (tmp_path / "stack").mkdir()
    stack = Stack(tmp_path / "stack", ssh_keys, conditions=[service_down])
    try:
        stack.add_host("web1")
        stack.inventory["web1"]["services"] = [{"name": "worker", "process": name}]
        stack.start()
        stack.mark("stack started, worker running")
        stack.wait_status("web1", "online", timeout=90)
        stopped = stack.mark("worker killed")
        proc.kill()
        proc.wait()
        down = stack.wait_notified("ServiceDown", server="web1", since=stopped, timeout=90)
        assert down.labels["service"] == "worker" and down.labels["severity"] == "critical"
        assert "Service worker on web1 is down" in down.annotations["summary"]
        stack.mark(f"ServiceDown notified after {down.at - stopped:.1f}s")
        started = stack.mark("worker started again")
        proc = subprocess.Popen([str(program), "600"])
        up = stack.wait_notified(
            "ServiceDown", server="web1", status="resolved", since=started, timeout=90
        )
        stack.mark(f"ServiceDown resolved after {up.at - started:.1f}s")
        assert up.at - started < 90
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stack.close()
