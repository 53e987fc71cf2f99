"""The exporter's HTTP surface: /sd, reload (POST and SIGHUP), push heartbeats, lint, local mode."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.exporter.harness import running_exporter, samples, server_entry, write_inventory
from tests.peers.prometheus import PROMTOOL
from tests.peers.sshd import Sshd
from tests.peers.util import free_port, stop, wait_for


def inventory(tmp_path: Path, ssh_server: Sshd, **extra_server) -> Path:
    (tmp_path / "token").write_text("push-token-123")
    servers = [
        server_entry(
            "web1",
            ssh_server,
            labels={"env": "prod"},
            push_token_file=str(tmp_path / "token"),
            **extra_server,
        ),
        server_entry("old", ssh_server, suspended=True),
        server_entry("<b>x</b>", ssh_server),
    ]
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    return write_inventory(
        tmp_path / "servers.yml",
        servers,
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )


def test_sd_lists_unsuspended_servers_with_labels(tmp_path: Path, ssh_server: Sshd) -> None:
    with running_exporter(inventory(tmp_path, ssh_server)) as exp:
        groups = requests.get(f"{exp.url}/sd", timeout=10).json()
    targets = {g["targets"][0]: g["labels"] for g in groups}
    assert set(targets) == {"web1", "<b>x</b>"}
    assert targets["web1"] == {"env": "prod", "server": "web1", "__param_module": "default"}


def test_landing_page_escapes_server_names(tmp_path: Path, ssh_server: Sshd) -> None:
    with running_exporter(inventory(tmp_path, ssh_server)) as exp:
        page = requests.get(exp.url + "/", timeout=10).text
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_heartbeat_age_is_inf_until_seen(tmp_path: Path, ssh_server: Sshd) -> None:
    with running_exporter(inventory(tmp_path, ssh_server)) as exp:
        values = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
        assert math.isinf(values['stacksense_heartbeat_age_seconds{server="web1"}'])
        assert values['stacksense_server_suspended{server="old"}'] == 1
        assert values['stacksense_server_suspended{server="web1"}'] == 0


def test_push_heartbeat_contract(tmp_path: Path, ssh_server: Sshd) -> None:
    with running_exporter(inventory(tmp_path, ssh_server)) as exp:
        url = f"{exp.url}/api/v1/heartbeat/web1"
        auth = {"Authorization": "Bearer push-token-123"}
        body = {"metrics": {"cpu_usage_ratio": 0.25, "filesystem_usage_ratio": {"/": 0.5}}}
        assert requests.post(url, json=body, headers=auth, timeout=10).status_code == 204
        wrong = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and "push-token-123" not in wrong.text
        assert (
            requests.post(f"{exp.url}/api/v1/heartbeat/ghost", headers=auth, timeout=10).status_code
            == 404
        )
        bad = requests.post(url, data=b"{not json", headers=auth, timeout=10)
        assert bad.status_code == 400 and "invalid JSON" in bad.text
        bad = requests.post(url, json={"metrics": {"cpu_usage_ratio": 7}}, headers=auth, timeout=10)
        assert bad.status_code == 400 and "metrics.cpu_usage_ratio" in bad.text
        values = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
    assert values['stacksense_last_heartbeat_timestamp_seconds{server="web1",source="push"}'] > 0
    assert values['stacksense_heartbeat_age_seconds{server="web1"}'] < 60
    assert values['stacksense_cpu_usage_ratio{server="web1"}'] == 0.25
    assert values['stacksense_filesystem_usage_ratio{mountpoint="/",server="web1"}'] == 0.5


def test_reload_is_all_or_nothing(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = inventory(tmp_path, ssh_server)
    with running_exporter(inv) as exp:
        good = inv.read_text()
        inv.write_text(good.replace("suspended: true", "suspended: maybe"))
        resp = requests.post(f"{exp.url}/-/reload", timeout=10)
        assert resp.status_code == 500 and "servers[1].suspended" in resp.text
        values = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
        assert values["stacksense_exporter_config_last_reload_successful"] == 0
        assert len(requests.get(f"{exp.url}/sd", timeout=10).json()) == 2  # old config kept
        inv.write_text(good.replace("suspended: true", "suspended: false"))
        assert requests.post(f"{exp.url}/-/reload", timeout=10).status_code == 200
        assert len(requests.get(f"{exp.url}/sd", timeout=10).json()) == 3
        values = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
        assert values["stacksense_exporter_config_last_reload_successful"] == 1


def test_sighup_reloads_the_running_exporter(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = inventory(tmp_path, ssh_server)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.main",
            f"--config.file={inv}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, what="exporter ready")
        data = yaml.safe_load(inv.read_text())
        data["servers"].append({"name": "new1", "host": "127.0.0.1", "port": 22})
        inv.write_text(yaml.safe_dump(data))
        proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: "new1" in requests.get(f"{url}/sd", timeout=1).text,
            what="new server after SIGHUP",
        )
    finally:
        stop(proc)


def test_check_config_cli_names_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "servers.yml"
    bad.write_text(yaml.safe_dump({"servers": [{"name": "a", "host": "h", "colour": "red"}]}))
    out = subprocess.run(
        [sys.executable, "-m", "exporter.main", f"--config.file={bad}", "--check-config"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "servers[0].colour: unknown key" in out.stderr


# node_exporter's own names keep kernel field names (MemTotal, Tcp_InSegs) and
# entropy in bits; promtool flags those in node_exporter's output too. Everything
# else, and every stacksense_ name, must lint clean.
COMPAT_FINDINGS = (
    "should be written in 'snake_case' not 'camelCase'",
    'use base unit "bytes" instead of "bits"',
)


@pytest.mark.parametrize("path", ["/probe", "/metrics"])
def test_promtool_check_metrics_is_clean(tmp_path: Path, ssh_server: Sshd, path: str) -> None:
    with running_exporter(inventory(tmp_path, ssh_server)) as exp:
        exp.probe_samples("web1")
        text = requests.get(exp.url + path, params={"target": "web1"}, timeout=30).text
    assert "stacksense_" in text
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    findings = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    unexpected = [
        f for f in findings if not (f.startswith("node_") and f.endswith(COMPAT_FINDINGS))
    ]
    assert not unexpected, unexpected


def test_local_mode_monitors_this_machine() -> None:
    with running_exporter(None, local_name="self") as exp:
        groups = requests.get(f"{exp.url}/sd", timeout=10).json()
        assert [g["targets"] for g in groups] == [["self"]]
        values = exp.probe_samples("self")
    assert values["stacksense_probe_success"] == 1
