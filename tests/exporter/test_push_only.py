"""A push-only host (mode: push): never contacted over SSH, status from its agent's heartbeats.

The host's address points at a real sshd that logs every connection (LogLevel
VERBOSE), so "never contacted" is checked where it matters: on the host's side.
The agent runs as a real process (`python -m exporter.agent`), as on a Linux host.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter import stacksense_cli
from tests.exporter.harness import running_exporter, samples
from tests.peers.sshd import SSHD, Sshd, SshdKeys
from tests.peers.util import free_port, port_open, stop, wait_for

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def verbose_sshd(workdir: Path, keys: SshdKeys) -> Iterator[Sshd]:
    """An sshd that logs each connection ("Connection from ...")."""
    workdir.mkdir()
    port = free_port()
    (workdir / "authorized_keys").write_text(Path(str(keys.client_key) + ".pub").read_text())
    cfg = workdir / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {keys.host_key}",
                f"PidFile {workdir}/sshd.pid",
                f"AuthorizedKeysFile {workdir}/authorized_keys",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin yes",
                "LogLevel VERBOSE",
                "SetEnv SHLVL=1",
            ]
        )
        + "\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), timeout=10, what="sshd")
        yield Sshd("127.0.0.1", port, workdir, keys, proc)
    finally:
        stop(proc)
        log.close()


def view(url: str, name: str) -> dict[str, Any]:
    resp = requests.get(f"{url}/api/v1/servers/{name}", timeout=10)
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result


def test_push_only_host_is_never_contacted_and_goes_offline_when_its_agent_stops(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with verbose_sshd(tmp_path / "sshd", ssh_keys) as host:
        known = tmp_path / "known_hosts"
        known.write_text(host.known_hosts_line())
        inv = tmp_path / "servers.yml"
        inv.write_text(f"""known_hosts: {known}
credentials:
  default:
    key_file: {ssh_keys.client_key}
servers:
  - name: probed
    host: 127.0.0.1
    port: {host.port}
  # A laptop behind NAT: it pushes, we never connect (its address is even reachable).
  - name: laptop
    mode: push
    host: 127.0.0.1
    port: {host.port}
    push_offline_after_seconds: 2
""")
        # The readiness check above connected once; nothing else may.
        baseline = wait_for(
            lambda: host.log().count("Connection from"),
            timeout=10,
            what="sshd's log of the readiness check",
        )
        with running_exporter(inv) as exp:
            # A new token, printed once; the inventory keeps only its hash.
            assert (
                stacksense_cli.main(
                    ["servers", "token", "laptop", "--inventory", str(inv), "--exporter", exp.url]
                )
                == 0
            )
            token = capsys.readouterr().out.splitlines()[1]
            assert len(token) >= 40 and token not in inv.read_text()
            assert "push_token_hash: sha256:" in inv.read_text()
            assert "# A laptop behind NAT" in inv.read_text()

            sd = requests.get(f"{exp.url}/sd", timeout=10).json()
            assert [g["targets"] for g in sd] == [["probed"]]
            refused = exp.probe("laptop")
            assert refused.status_code == 400 and "push-only" in refused.text
            assert view(exp.url, "laptop")["status"] == "pending"
            tested = requests.post(f"{exp.url}/api/v1/servers/laptop/test", timeout=10).json()
            assert "never contacted" in tested["summary"][0]

            bad = requests.post(
                f"{exp.url}/api/v1/heartbeat/laptop",
                headers={"Authorization": "Bearer not-it"},
                timeout=10,
            )
            assert bad.status_code == 401

            env = {**os.environ, "STACKSENSE_TOKEN": token, "PYTHONPATH": str(REPO)}
            agent = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "exporter.agent",
                    "--url",
                    exp.url,
                    "--server",
                    "laptop",
                    "--interval",
                    "1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_for(
                    lambda: view(exp.url, "laptop")["status"] == "online",
                    timeout=20,
                    what="the laptop online from its heartbeats",
                )
                metrics = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
                info = [
                    k
                    for k in metrics
                    if k.startswith("stacksense_agent_info") and 'server="laptop"' in k
                ]
                assert len(info) == 1 and 'version="' in info[0] and 'os="Linux"' in info[0]
                assert metrics['stacksense_server_push_only{server="laptop"}'] == 1
            finally:
                agent.terminate()
                _, err = agent.communicate(timeout=10)
            assert agent.returncode == 0 and token.encode() not in err
            offline = wait_for(
                lambda: (v := view(exp.url, "laptop"))["status"] == "offline" and v,
                timeout=15,
                what="the laptop offline",
            )
            assert (
                offline["reason"] == "no_heartbeat" and "last push heartbeat" in offline["message"]
            )

            # Not one SSH connection reached the host for the push-only server...
            assert host.log().count("Connection from") == baseline
            # ...while a probe of the SSH server shows in the same log (the check works).
            assert exp.probe_samples("probed")["stacksense_probe_success"] == 1
            wait_for(
                lambda: host.log().count("Connection from") == baseline + 1,
                timeout=10,
                what="sshd's log of the probe",
            )


def test_shipped_service_definitions_run_the_installed_agent_with_its_flags() -> None:
    import tomllib
    import xml.etree.ElementTree as ET

    from exporter.agent.cli import parse_args

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["stacksense-agent"] == "exporter.agent.cli:main"
    unit = (REPO / "packaging" / "stacksense-agent.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    program, *args = exec_start.removeprefix("ExecStart=").split()
    assert program.endswith("/stacksense-agent") and "[Install]" in unit
    assert parse_args(args).config == Path("/etc/stacksense/agent.yml")
    service = ET.parse(REPO / "packaging" / "stacksense-agent-windows.xml").getroot()
    assert service.findtext("id") == "stacksense-agent"
    assert service.findtext("executable", "").endswith("stacksense-agent.exe")
    assert "--config" in service.findtext("arguments", "")
