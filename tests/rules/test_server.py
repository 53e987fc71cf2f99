"""The engine's HTTP endpoints and CLI, with Prometheus unreachable (it must still serve)."""

from __future__ import annotations

import socket

import pytest
import requests

from rules import server as rules_server
from rules.cli import main
from rules.server import RulesService
from tests.peers.util import free_port, wait_for


def write_config(path, *, interval="60s", extra=""):
    path.write_text(f"""
prometheus: {{url: "http://127.0.0.1:{free_port()}", retries: 0, timeout: 1s}}
interval: {interval}
state_file: state.json
{extra}""")
    return path


@pytest.fixture
def service(tmp_path):
    cfg = write_config(tmp_path / "rules.yml", extra="web: {reload_token_file: token}")
    (tmp_path / "token").write_text("reload-secret\n")
    svc = RulesService(cfg)
    host, port = svc.start(f"127.0.0.1:{free_port()}")
    yield svc, f"http://{host}:{port}", cfg
    svc.stop()


def test_endpoints(service):
    svc, url, _ = service
    assert requests.get(f"{url}/-/healthy", timeout=5).status_code == 200
    wait_for(
        lambda: requests.get(f"{url}/-/ready", timeout=5).status_code == 200,
        what="ready after the first cycle",
    )
    metrics = requests.get(f"{url}/metrics", timeout=5).text
    assert "stacksense_rules_prometheus_up 0.0" in metrics  # Prometheus is unreachable
    assert "stacksense_rules_prometheus_errors_total" in metrics
    assert "stacksense_rules_config_last_reload_successful 1.0" in metrics
    assert requests.get(f"{url}/api/v1/servers", timeout=5).json()["ok"] is False
    assert requests.get(f"{url}/api/v1/servers/nope", timeout=5).status_code == 404
    assert requests.get(f"{url}/nope", timeout=5).status_code == 404


def test_reload_needs_the_token_and_keeps_old_config_on_error(service):
    svc, url, cfg = service
    assert requests.post(f"{url}/-/reload", timeout=5).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert requests.post(f"{url}/-/reload", headers=bad, timeout=5).status_code == 401
    good = {"Authorization": "Bearer reload-secret"}
    cfg.write_text(cfg.read_text().replace("interval: 60s", "interval: 30s"))
    resp = requests.post(f"{url}/-/reload", headers=good, timeout=5)
    assert resp.status_code == 200 and svc.engine.config.interval_seconds == 30
    cfg.write_text(cfg.read_text() + "\nbogus_key: 1\n")
    resp = requests.post(f"{url}/-/reload", headers=good, timeout=5)
    assert resp.status_code == 500 and "bogus_key: unknown key" in resp.text
    assert "reload-secret" not in resp.text
    assert svc.engine.config.interval_seconds == 30  # previous config kept
    metrics = requests.get(f"{url}/metrics", timeout=5).text
    assert "stacksense_rules_config_last_reload_successful 0.0" in metrics


def test_check_config_cli(tmp_path, capsys):
    cfg = write_config(tmp_path / "ok.yml")
    assert main(["check-config", "--config", str(cfg)]) == 0
    assert (
        "5 condition(s): HighCpuUsage, HighMemoryUsage, DiskAlmostFull, Watchdog, ServiceDown"
    ) in capsys.readouterr().out
    cfg.write_text("status: {offline_after: soon}\n")
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert "ok.yml: status.offline_after: expected a duration" in capsys.readouterr().err
    conds = tmp_path / "c.yml"
    conds.write_text("conditions: [{alert: X, expr: up, severity: page}]\n")
    assert main(["check-config", "--conditions", str(conds)]) == 2
    assert "c.yml: conditions[0].severity: must be one of" in capsys.readouterr().err


def test_run_once_reports_failure_when_prometheus_is_down(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "rules.yml")
    assert main(["run", "--once", "--config", str(cfg)]) == 1
    assert '"ok": false' in capsys.readouterr().out
    assert (tmp_path / "state.json").exists()


def test_detect_subcommand_delegates_to_the_detector(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text(
        "timestamp,value\n" + "".join(f"{1700000000 + 60 * i},{i % 3}\n" for i in range(5))
    )
    assert main(["detect", str(csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "timestamp,value,anomaly_score" and len(lines) == 6


def test_run_as_a_process_reloads_on_sighup_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.peers.util import stop

    cfg = write_config(tmp_path / "rules.yml", interval="1s")
    port = free_port()
    log = open(tmp_path / "rules.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rules.cli",
            "run",
            "--config",
            str(cfg),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{url}/-/ready", timeout=1).ok, timeout=20, what="engine ready"
        )
        cfg.write_text(cfg.read_text() + "\nbogus: 1\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: (
                "stacksense_rules_config_last_reload_successful 0.0"
                in requests.get(f"{url}/metrics", timeout=1).text
            ),
            timeout=10,
            what="failed reload reported",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop(proc)
        log.close()
    assert (tmp_path / "state.json").exists() and (tmp_path / "state.json.anomalies").exists()
    assert "bogus: unknown key" in (tmp_path / "rules.log").read_text()


def test_a_silent_client_is_dropped_after_the_timeout(tmp_path, monkeypatch):
    assert rules_server.CLIENT_TIMEOUT >= 30
    monkeypatch.setattr(rules_server, "CLIENT_TIMEOUT", 0.3)
    svc = RulesService(write_config(tmp_path / "rules.yml"))
    host, port = svc.start(f"127.0.0.1:{free_port()}")
    try:
        with socket.create_connection((host, port), timeout=10) as silent:
            silent.sendall(b"GET /-/healthy HTTP/1.1\r\n")  # and never ends its headers
            assert silent.recv(1024) == b""  # closed by the server, well before our 10 s
        assert requests.get(f"http://{host}:{port}/-/healthy", timeout=5).status_code == 200
    finally:
        svc.stop()
