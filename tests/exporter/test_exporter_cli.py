"""The exporter as a process: bind errors, one log line per failed probe, --check-config."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.exporter.harness import server_entry, write_inventory
from tests.peers.silent import silent_host
from tests.peers.sshd import KEY_PASSPHRASE, Sshd, keygen
from tests.peers.util import free_port, stop, wait_for


def exporter_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "exporter.main", *args]


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_bind_error_is_one_line_and_exit_1(busy_port: int) -> None:
    out = subprocess.run(
        exporter_cmd(f"--web.listen-address=127.0.0.1:{busy_port}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"exporter: cannot listen on 127.0.0.1:{busy_port}: address already in use"
    ]


@pytest.mark.parametrize(
    "address,expected",
    [
        ("nowhere", "exporter: invalid listen address 'nowhere' (expected HOST:PORT)"),
        (
            "203.0.113.7:9816",
            "exporter: cannot listen on 203.0.113.7:9816: cannot assign requested address",
        ),
    ],
)
def test_other_listen_errors_are_one_line(address: str, expected: str) -> None:
    out = subprocess.run(
        exporter_cmd(f"--web.listen-address={address}"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [expected]


def test_a_failed_probe_logs_one_line_without_traceback(tmp_path: Path) -> None:
    with silent_host() as silent:
        inv = write_inventory(
            tmp_path / "servers.yml",
            [{"name": "silent", "host": "127.0.0.1", "port": silent.port}],
            {"default": {"password_env": "HOME"}},
            tmp_path / "known_hosts",
        )
        port = free_port()
        log = tmp_path / "exporter.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                exporter_cmd(f"--config.file={inv}", f"--web.listen-address=127.0.0.1:{port}"),
                stdout=err,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, what="exporter")
            for _ in range(2):
                resp = requests.get(
                    f"{url}/probe",
                    params={"target": "silent"},
                    headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"},
                    timeout=30,
                )
                assert resp.status_code == 200
            wait_for(lambda: silent.accepted, what="a connection")
        finally:
            stop(proc)
    lines = log.read_text().splitlines()
    probe_lines = [line for line in lines if "probe silent failed" in line]
    assert len(probe_lines) == 2, lines
    assert "reason=timeout" in probe_lines[0]
    assert not any("Traceback" in line or "paramiko" in line for line in lines), lines
    assert len(lines) <= 4, lines  # the start line, one per probe, nothing else


# ------------------------------------------------------------------ --check-config


def check(inv: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        exporter_cmd(f"--config.file={inv}", "--check-config", *extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_ok(tmp_path: Path, ssh_server: Sshd) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("web1", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    out = check(inv)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK: 1 servers"


def test_check_config_names_server_and_path_of_each_problem(
    tmp_path: Path, ssh_server: Sshd
) -> None:
    keys = ssh_server.keys
    garbage = tmp_path / "garbage_key"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    (tmp_path / "wrong_pp").write_text("not the passphrase\n")
    missing_cert_key = keygen(tmp_path / "no_cert_key")
    creds = {
        "missing": {"key_file": str(tmp_path / "nope")},
        "garbage": {"key_file": str(garbage)},
        "locked": {"key_file": str(keys.protected_key)},
        "wrongpp": {
            "key_file": str(keys.protected_key),
            "passphrase_file": str(tmp_path / "wrong_pp"),
        },
        "nocert": {
            "key_file": str(missing_cert_key),
            "certificate_file": str(tmp_path / "no_cert_key-cert.pub"),
        },
        "good": {"key_file": str(keys.client_key)},
    }
    servers = [server_entry(f"s-{name}", ssh_server, credentials=name) for name in creds]
    inv = write_inventory(tmp_path / "servers.yml", servers, creds, tmp_path / "absent_known_hosts")
    out = check(inv, f"--web.reload-token-file={tmp_path / 'no_token'}")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    by_server = {name: [line for line in lines if f"server s-{name}:" in line] for name in creds}
    assert by_server["missing"] == [
        f"stacksense-exporter: server s-missing: "
        f"credentials.missing.key_file {tmp_path / 'nope'} "
        "does not exist"
    ]
    assert len(by_server["garbage"]) == 1 and str(garbage) in by_server["garbage"][0]
    assert len(by_server["locked"]) == 1
    assert "encrypted and no passphrase" in by_server["locked"][0]
    assert len(by_server["wrongpp"]) == 1 and "wrong passphrase" in by_server["wrongpp"][0]
    assert len(by_server["nocert"]) == 1 and "no_cert_key-cert.pub" in by_server["nocert"][0]
    assert by_server["good"] == []
    assert any("absent_known_hosts does not exist" in line for line in lines)
    assert any(
        f"--web.reload-token-file {tmp_path / 'no_token'} does not exist" in line for line in lines
    )
    assert len(lines) == 7, lines  # one line per problem, nothing else
    assert KEY_PASSPHRASE not in out.stderr and "not the passphrase" not in out.stderr


def test_check_config_accepts_a_missing_known_hosts_when_every_server_pins_on_first_use(
    tmp_path: Path, ssh_server: Sshd
) -> None:
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("web1", ssh_server, trust_on_first_use=True)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        tmp_path / "known_hosts",
    )
    assert check(inv).returncode == 0


def test_check_config_missing_token_file_of_a_server(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("web1", ssh_server, push_token_file=str(tmp_path / "push_token"))],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        tmp_path / "known_hosts",
    )
    out = check(inv)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert "servers[0].push_token_file" in out.stderr and "push_token" in out.stderr
