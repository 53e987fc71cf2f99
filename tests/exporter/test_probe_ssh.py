"""Probes over real SSH: every authentication method, host keys, failures as values."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.exporter.harness import running_exporter, samples, server_entry, write_inventory
from tests.peers.sshd import KEY_PASSPHRASE, PASSWORD, PASSWORD_USER, Sshd, ensure_password_user

FAIL = 'stacksense_probe_failure{{reason="{}"}}'


def known_hosts_for(tmp_path: Path, *servers: Sshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(s.known_hosts_line() for s in servers))
    return path


def assert_failed(values: dict[str, float], reason: str) -> None:
    assert values["stacksense_probe_success"] == 0
    assert values[FAIL.format(reason)] == 1, {k: v for k, v in values.items() if "failure" in k}
    assert sum(v for k, v in values.items() if k.startswith("stacksense_probe_failure")) == 1


def test_key_auth_probe_reads_the_host(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("web1", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known_hosts_for(tmp_path, ssh_server),
    )
    with running_exporter(inv) as exp:
        values = exp.probe_samples("web1")
        assert values["stacksense_probe_success"] == 1
        assert all(values[FAIL.format(r)] == 0 for r in ("timeout", "auth", "host_key"))
        # The connection is pooled: a second probe reuses it.
        exp.probe_samples("web1")
        assert exp.app.pool.open_connections() == 1
        metrics = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
        beat = metrics['stacksense_last_heartbeat_timestamp_seconds{server="web1",source="ssh"}']
        assert abs(beat - time.time()) < 30
        assert metrics['stacksense_heartbeat_age_seconds{server="web1"}'] < 30


@pytest.mark.parametrize(
    "method", ["passphrase_env", "passphrase_file", "certificate", "agent", "password"]
)
def test_every_auth_method(
    tmp_path: Path, ssh_server: Sshd, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ssh_server.keys
    user = "root"
    if method == "passphrase_env":
        monkeypatch.setenv("SS_TEST_PASSPHRASE", KEY_PASSPHRASE)
        creds = {"key_file": str(keys.protected_key), "passphrase_env": "SS_TEST_PASSPHRASE"}
    elif method == "passphrase_file":
        (tmp_path / "pp").write_text(KEY_PASSPHRASE + "\n")
        creds = {"key_file": str(keys.protected_key), "passphrase_file": str(tmp_path / "pp")}
    elif method == "certificate":
        # The cert key itself is NOT in authorized_keys: only the CA signature lets it in.
        creds = {
            "key_file": str(keys.cert_key),
            "certificate_file": str(keys.cert_key) + "-cert.pub",
        }
    elif method == "agent":
        sock = tmp_path / "agent.sock"
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if sock.exists():
                    break
                time.sleep(0.02)
            subprocess.run(
                ["ssh-add", "-q", str(keys.client_key)],
                check=True,
                env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
            )
        except Exception:
            agent.kill()
            raise
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        creds = {"agent": True}
    else:
        if not ensure_password_user():
            pytest.skip("password auth needs root to create a local user")
        (tmp_path / "pw").write_text(PASSWORD)
        creds = {"password_file": str(tmp_path / "pw")}
        user = PASSWORD_USER
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server, user=user)],
        {"default": creds},
        known_hosts_for(tmp_path, ssh_server),
    )
    try:
        with running_exporter(inv) as exp:
            values = exp.probe_samples("h")
            assert values["stacksense_probe_success"] == 1, values
    finally:
        if method == "agent":
            agent.kill()
            agent.wait()


def test_wrong_credentials_fail_as_auth_without_leaking(
    tmp_path: Path, ssh_server: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    if not ensure_password_user():
        pytest.skip("needs root")
    secret = "wrong-Pa55-do-not-leak"
    (tmp_path / "pw").write_text(secret)
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server, user=PASSWORD_USER)],
        {"default": {"password_file": str(tmp_path / "pw")}},
        known_hosts_for(tmp_path, ssh_server),
    )
    with running_exporter(inv) as exp:
        resp = exp.probe("h")
        assert_failed(samples(resp.text), "auth")
        pages = [resp.text] + [
            requests.get(exp.url + p, timeout=10).text for p in ("/metrics", "/sd", "/")
        ]
    assert "authentication failed" in caplog.text
    for text in [*pages, caplog.text, repr(exp.app.inventory)]:
        assert secret not in text


def test_unknown_host_key_refused_then_pinned_by_tofu(tmp_path: Path, ssh_server: Sshd) -> None:
    known = tmp_path / "known_hosts"
    creds = {"default": {"key_file": str(ssh_server.keys.client_key)}}
    servers = [
        server_entry("strict", ssh_server),
        server_entry("tofu", ssh_server, trust_on_first_use=True),
    ]
    inv = write_inventory(tmp_path / "servers.yml", servers, creds, known)
    with running_exporter(inv) as exp:
        assert_failed(exp.probe_samples("strict"), "host_key")
        assert not known.exists()
        assert exp.probe_samples("tofu")["stacksense_probe_success"] == 1
        assert ssh_server.keys.host_public_key().split()[1] in known.read_text()
        # Once pinned, the strict server (same host:port) is verified too.
        assert exp.probe_samples("strict")["stacksense_probe_success"] == 1


def test_changed_host_key_always_refused(tmp_path: Path, ssh_server: Sshd) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, b64 = Path(str(other) + ".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{ssh_server.host}]:{ssh_server.port} {key_type} {b64}\n")
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server, trust_on_first_use=True)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
    )
    with running_exporter(inv) as exp:
        assert_failed(exp.probe_samples("h"), "host_key")
    assert (
        b64 in known.read_text()
        and ssh_server.keys.host_public_key().split()[1] not in known.read_text()
    )


def test_refused_port(tmp_path: Path, ssh_server: Sshd) -> None:
    from tests.peers.util import free_port

    inv = write_inventory(
        tmp_path / "servers.yml",
        [{"name": "down", "host": "127.0.0.1", "port": free_port()}],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        tmp_path / "kh",
    )
    with running_exporter(inv) as exp:
        assert_failed(exp.probe_samples("down"), "refused")


def test_unknown_target_and_module_are_400(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("h", ssh_server)],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        tmp_path / "kh",
    )
    with running_exporter(inv) as exp:
        resp = exp.probe("nope")
        assert resp.status_code == 400 and "unknown target 'nope'" in resp.text
        resp = exp.probe("h", module="nope")
        assert resp.status_code == 400 and "unknown module 'nope'" in resp.text
        resp = requests.get(f"{exp.url}/probe", timeout=10)
        assert resp.status_code == 400 and "target" in resp.text


def test_one_write_module_exports_the_same_series(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("plain", ssh_server), server_entry("one", ssh_server, module="one")],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known_hosts_for(tmp_path, ssh_server),
        modules={"one": {"one_write": True}},
    )
    with running_exporter(inv) as exp:
        assert exp.app.inventory.modules["one"].one_write
        for _ in range(2):  # the second probe runs the steady script (cheap sections)
            plain, one = exp.probe_samples("plain"), exp.probe_samples("one")
    assert one["stacksense_probe_success"] == plain["stacksense_probe_success"] == 1
    assert set(one) == set(plain)
    static = [
        k
        for k in plain
        if k.startswith(("node_memory_MemTotal", "node_network_mtu", "node_filesystem_size_bytes"))
    ]
    assert static and all(one[k] == plain[k] for k in static)
