"""The peers the suite relies on start, answer and stop."""

from __future__ import annotations

import subprocess

from tests.peers.prometheus import prometheus
from tests.peers.sshd import Sshd


def test_sshd_accepts_client_key(ssh_server: Sshd) -> None:
    out = subprocess.run(
        ["ssh", "-i", str(ssh_server.keys.client_key), "-p", str(ssh_server.port),
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", f"root@{ssh_server.host}", "echo hello"],
        capture_output=True, text=True, timeout=20,
    )
    assert out.stdout.strip() == "hello", out.stderr


def test_prometheus_answers_queries(tmp_path) -> None:
    with prometheus(tmp_path) as prom:
        assert prom.query("vector(42)")[0]["value"][1] == "42"
