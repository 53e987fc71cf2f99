"""Reloads that must not hurt: unreadable or undecodable files, an emptied fleet, state of
removed servers, and who may reload at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml

from exporter.app import ExporterApp
from exporter.server import ExporterHTTPServer
from tests.exporter.harness import running_exporter, samples, server_entry, write_inventory
from tests.peers.netns import netns_available, network, require_root
from tests.peers.sshd import Sshd
from tests.peers.util import free_port, stop, wait_for

RELOAD_OK = "stacksense_exporter_config_last_reload_successful"


def inventory(
    tmp_path: Path, ssh_server: Sshd, names: tuple[str, ...] = ("web1", "web2"), **extra: object
) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_server.known_hosts_line())
    return write_inventory(
        tmp_path / "servers.yml",
        [server_entry(n, ssh_server) for n in names],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
        **extra,
    )


def metrics(url: str) -> dict[str, float]:
    return samples(requests.get(f"{url}/metrics", timeout=10).text)


def sd_targets(url: str) -> set[str]:
    return {g["targets"][0] for g in requests.get(f"{url}/sd", timeout=10).json()}


BAD_FILES = {
    "latin-1": ("servers:\n- name: caf\xe9\n  host: h\n".encode("latin-1"), "not UTF-8"),
    "utf-16": ("servers: []\n".encode("utf-16"), "not UTF-8"),
    "yaml": (b"servers: [\n  - {name: a\n", "invalid YAML"),
    "binary": (bytes(range(256)), "not UTF-8"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_file_that_cannot_be_decoded_keeps_the_old_inventory(
    tmp_path: Path, ssh_server: Sshd, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    inv = inventory(tmp_path, ssh_server)
    content, expected = BAD_FILES[kind]
    with running_exporter(inv) as exp:
        inv.write_bytes(content)
        caplog.clear()
        resp = requests.post(f"{exp.url}/-/reload", timeout=10)
        logged = [r for r in caplog.records if r.name.startswith("exporter")]
        assert len(logged) == 1 and "reload failed" in logged[0].getMessage(), logged
        assert logged[0].exc_info is None
        assert resp.status_code == 500 and expected in resp.text, resp.text
        assert resp.text.count("\n") == 1
        assert metrics(exp.url)[RELOAD_OK] == 0
        assert sd_targets(exp.url) == {"web1", "web2"}


def test_sighup_with_a_non_utf8_file_logs_one_line_and_reports_failure(
    tmp_path: Path, ssh_server: Sshd
) -> None:
    inv = inventory(tmp_path, ssh_server)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "exporter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.main",
                f"--config.file={inv}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, what="exporter ready")
        inv.write_bytes(BAD_FILES["latin-1"][0])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: metrics(url)[RELOAD_OK] == 0, what="reload failure reported")
        assert sd_targets(url) == {"web1", "web2"}
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    failed = [line for line in lines if "reload failed" in line]
    assert len(failed) == 1 and "not UTF-8" in failed[0], lines
    assert not any("Traceback" in line for line in lines), lines
    assert len(lines) == 2, lines  # the start line and the failure


@pytest.mark.parametrize("content", ["", "servers: []\n", "# emptied by an editor\n"])
def test_an_inventory_that_removes_every_server_is_refused(
    tmp_path: Path, ssh_server: Sshd, content: str
) -> None:
    inv = inventory(tmp_path, ssh_server)
    with running_exporter(inv) as exp:
        inv.write_text(content)
        resp = requests.post(f"{exp.url}/-/reload", timeout=10)
        assert resp.status_code == 500
        assert "would remove all 2" in resp.text and "allow_empty: true" in resp.text
        assert metrics(exp.url)[RELOAD_OK] == 0
        assert sd_targets(exp.url) == {"web1", "web2"}


def test_allow_empty_lets_the_fleet_be_emptied(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = inventory(tmp_path, ssh_server)
    with running_exporter(inv) as exp:
        inv.write_text(yaml.safe_dump({"servers": [], "allow_empty": True}))
        assert requests.post(f"{exp.url}/-/reload", timeout=10).status_code == 200
        assert sd_targets(exp.url) == set()
        assert metrics(exp.url)[RELOAD_OK] == 1


def test_removed_servers_lose_their_connection_and_state(tmp_path: Path, ssh_server: Sshd) -> None:
    inv = inventory(tmp_path, ssh_server)
    with running_exporter(inv) as exp:
        for name in ("web1", "web2"):
            assert exp.probe_samples(name)["stacksense_probe_success"] == 1
        assert metrics(exp.url)["stacksense_ssh_connections_open"] == 2
        inventory(tmp_path, ssh_server, ("web1",))
        assert requests.post(f"{exp.url}/-/reload", timeout=10).status_code == 200
        # Closed at once, not when the host drops an idle connection.
        wait_for(
            lambda: metrics(exp.url)["stacksense_ssh_connections_open"] == 1,
            timeout=5,
            what="web2's connection closed",
        )
        assert exp.app.pool.slot_names() == {"web1"}
        assert exp.app.prober.state_names() == {"web1"}
        # Back in the inventory, it starts afresh and works.
        inventory(tmp_path, ssh_server)
        assert requests.post(f"{exp.url}/-/reload", timeout=10).status_code == 200
        assert exp.probe_samples("web2")["stacksense_probe_success"] == 1


def test_reload_with_a_token_file_needs_the_bearer_token(tmp_path: Path, ssh_server: Sshd) -> None:
    token = tmp_path / "reload_token"
    token.write_text("s3cret-reload\n")
    inv = inventory(tmp_path, ssh_server)
    with running_exporter(inv, server_options={"reload_token_file": token}) as exp:
        url = f"{exp.url}/-/reload"
        assert requests.post(url, timeout=10).status_code == 401
        wrong = requests.post(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        ok = {"Authorization": "Bearer s3cret-reload"}
        assert requests.post(url, headers=ok, timeout=10).status_code == 200
        assert requests.put(url, headers=ok, timeout=10).status_code == 200
        token.write_text("rotated\n")  # read at each request: rotation needs no restart
        assert requests.post(url, headers=ok, timeout=10).status_code == 401
        token.unlink()  # unreadable: refused, never open
        assert requests.post(url, headers=ok, timeout=10).status_code == 401


@pytest.mark.root
def test_reload_without_a_token_file_is_for_loopback_clients_only(
    tmp_path: Path, ssh_server: Sshd
) -> None:
    require_root()
    if not netns_available():
        pytest.skip("network namespaces are not available here")
    inv = inventory(tmp_path, ssh_server)
    app = ExporterApp(str(inv))
    with network(1) as net:
        server = ExporterHTTPServer(("0.0.0.0", 0), app)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]
        try:
            client = (
                "import urllib.request, urllib.error, sys\n"
                f"req = urllib.request.Request('http://{net.gateway}:{port}/-/reload', "
                "method='POST')\n"
                "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
                "except urllib.error.HTTPError as e:\n    print(e.code)\n"
            )
            remote = net.hosts[0].exec(sys.executable, "-c", client)
            assert remote.stdout.decode().strip() == "401"
            local = requests.post(f"http://127.0.0.1:{port}/-/reload", timeout=10)
            assert local.status_code == 200
        finally:
            server.shutdown()
            server.server_close()
            app.close()
