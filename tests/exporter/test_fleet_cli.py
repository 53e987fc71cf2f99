"""`stacksense servers ...` and `/api/v1/servers` against real sshd hosts and a real exporter."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from exporter import stacksense_cli
from tests.exporter.harness import RunningExporter, running_exporter
from tests.peers.sshd import PASSWORD, SSHD, Sshd, SshdKeys, sshd
from tests.peers.util import free_port, port_open, serving, stop, wait_for

HEADER = """# Our fleet. Keep this comment.
known_hosts: {known}
credentials:
  default:
    key_file: {key}   # the monitoring key
servers:
  # web servers
  - name: web1
    host: 127.0.0.1
    port: {port}
  # end of servers
"""


def inventory(tmp_path: Path, ssh_keys: SshdKeys, server: Sshd) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    path = tmp_path / "servers.yml"
    path.write_text(HEADER.format(known=known, key=ssh_keys.client_key, port=server.port))
    return path


def servers_cli(inv: Path, exp: RunningExporter, *args: str) -> list[str]:
    op, *rest = args
    return ["servers", op, "--inventory", str(inv), "--exporter", exp.url, *rest]


def json_server(payload: object) -> ThreadingHTTPServer:
    """A stand-in for the rule engine's GET /api/v1/servers."""
    body = json.dumps(payload).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200 if self.path == "/api/v1/servers" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def names(path: Path) -> list[str]:
    return [s["name"] for s in yaml.safe_load(path.read_text())["servers"]]


def sd_targets(exp: RunningExporter) -> list[str]:
    return [g["targets"][0] for g in requests.get(f"{exp.url}/sd", timeout=10).json()]


def test_cli_lifecycle_edits_the_inventory_in_place_and_reloads_the_exporter(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inv = inventory(tmp_path, ssh_keys, ssh_server)
    with running_exporter(inv) as exp:
        assert (
            stacksense_cli.main(
                servers_cli(
                    inv,
                    exp,
                    "add",
                    "web2",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ssh_server.port),
                    "--label",
                    "env=prod",
                )
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "web2: added" in out and "exporter reloaded" in out
        text = inv.read_text()
        assert "# Our fleet. Keep this comment." in text and "# the monitoring key" in text
        assert "# end of servers" in text
        assert names(inv) == ["web1", "web2"]
        assert sorted(exp.app.inventory.servers) == ["web1", "web2"]  # reloaded

        # Re-adding the same entry changes nothing (and reloads nothing).
        assert (
            stacksense_cli.main(
                servers_cli(
                    inv,
                    exp,
                    "add",
                    "web2",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ssh_server.port),
                    "--label",
                    "env=prod",
                )
            )
            == 0
        )
        assert "web2: unchanged" in capsys.readouterr().out

        # list: pending before any probe, online after one, with the last heartbeat.
        assert (
            stacksense_cli.main(
                servers_cli(
                    inv, exp, "list", "--json", "--rules", f"http://127.0.0.1:{free_port()}"
                )
            )
            == 0
        )
        listed = {v["name"]: v for v in json.loads(capsys.readouterr().out)["servers"]}
        assert listed["web2"]["status"] == "pending"
        assert exp.probe("web2").status_code == 200
        assert (
            stacksense_cli.main(
                servers_cli(inv, exp, "list", "--rules", f"http://127.0.0.1:{free_port()}")
            )
            == 0
        )
        table = capsys.readouterr().out
        row = next(line for line in table.splitlines() if line.startswith("web2"))
        assert "online" in row and "ago" in row

        assert stacksense_cli.main(servers_cli(inv, exp, "suspend", "web2")) == 0
        assert "web2: suspended" in capsys.readouterr().out
        assert yaml.safe_load(inv.read_text())["servers"][1]["suspended"] is True
        assert sd_targets(exp) == ["web1"]
        assert stacksense_cli.main(servers_cli(inv, exp, "resume", "web2")) == 0
        assert "suspended" not in yaml.safe_load(inv.read_text())["servers"][1]
        assert sd_targets(exp) == ["web1", "web2"]
        capsys.readouterr()

        assert stacksense_cli.main(servers_cli(inv, exp, "test", "web2")) == 0
        out = capsys.readouterr().out
        assert out.startswith("web2: OK in ") and "collectors:" in out

        assert stacksense_cli.main(servers_cli(inv, exp, "remove", "web2")) == 0
        assert names(inv) == ["web1"] and "# end of servers" in inv.read_text()
        assert sorted(exp.app.inventory.servers) == ["web1"]

        # A push-only host needs no address and is never probed (no login check either).
        assert stacksense_cli.main(servers_cli(inv, exp, "add", "laptop", "--mode", "push")) == 0
        assert yaml.safe_load(inv.read_text())["servers"][1] == {"name": "laptop", "mode": "push"}
        assert sd_targets(exp) == ["web1"]
        assert stacksense_cli.main(servers_cli(inv, exp, "remove", "laptop")) == 0
        capsys.readouterr()

        # With the rule engine reachable, its status and reason win (it sees the history).
        rules = {
            "servers": {
                "web1": {
                    "status": "offline",
                    "reason": "refused",
                    "reason_text": "connection refused by 127.0.0.1:22",
                    "last_error": None,
                }
            }
        }
        with serving(json_server(rules)) as httpd:
            rules_url = f"http://127.0.0.1:{httpd.server_address[1]}"
            assert stacksense_cli.main(servers_cli(inv, exp, "list", "--rules", rules_url)) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("web1"))
        assert "offline" in row and "connection refused by 127.0.0.1:22" in row

        # Errors are one line each, and change nothing.
        before = inv.read_text()
        assert stacksense_cli.main(servers_cli(inv, exp, "remove", "nope")) == 1
        assert "no server named 'nope'" in capsys.readouterr().err
        assert (
            stacksense_cli.main(
                servers_cli(
                    inv, exp, "add", "bad", "--host", "127.0.0.1", "--port", str(free_port())
                )
            )
            == 1
        )
        assert "refused" in capsys.readouterr().err
        assert (
            stacksense_cli.main(
                servers_cli(inv, exp, "add", "x", "--host", "127.0.0.1", "--module", "nosuch")
            )
            == 1
        )
        assert "no module named 'nosuch'" in capsys.readouterr().err
        assert inv.read_text() == before


def test_api_writes_need_the_token_and_validate_like_the_cli(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
) -> None:
    inv = inventory(tmp_path, ssh_keys, ssh_server)
    token = tmp_path / "api.token"
    token.write_text("s3cr3t-api-token\n")
    auth = {"Authorization": "Bearer s3cr3t-api-token"}
    with running_exporter(inv, server_options={"api_token_file": token}) as exp:
        api = f"{exp.url}/api/v1/servers"
        body = {"name": "web2", "host": "127.0.0.1", "port": ssh_server.port}
        assert requests.post(api, json=body, timeout=10).status_code == 401
        assert (
            requests.post(
                api, json=body, headers={"Authorization": "Bearer wrong"}, timeout=10
            ).status_code
            == 401
        )
        bad = requests.post(api, json={**body, "port": "http"}, headers=auth, timeout=10)
        assert bad.status_code == 400 and "port" in bad.json()["error"]
        bad = requests.post(api, json={**body, "shell": "rm -rf /"}, headers=auth, timeout=10)
        assert bad.status_code == 400 and "shell: unknown field" in bad.json()["error"]
        assert requests.post(api, data=b"{", headers=auth, timeout=10).status_code == 400
        refused = requests.post(api, json={**body, "port": free_port()}, headers=auth, timeout=30)
        assert refused.status_code == 409 and refused.json()["reason"] == "refused"

        created = requests.post(api, json=body, headers=auth, timeout=30)
        assert created.status_code == 201, created.text
        assert names(inv) == ["web1", "web2"] and "# the monitoring key" in inv.read_text()
        assert "web2" in exp.app.inventory.servers

        r = requests.post(f"{api}/web2/suspend", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["result"] == "suspended"
        assert sd_targets(exp) == ["web1"]
        listed = {v["name"]: v for v in requests.get(api, timeout=10).json()["servers"]}
        assert listed["web2"]["status"] == "suspended"
        requests.post(f"{api}/web2/resume", headers=auth, timeout=10).raise_for_status()

        tested = requests.post(f"{api}/web2/test", headers=auth, timeout=30).json()
        assert tested["success"] is True and tested["summary"]
        one = requests.get(f"{api}/web2", timeout=10).json()
        assert one["status"] == "online" and one["last_heartbeat"] is not None

        assert requests.delete(f"{api}/nope", headers=auth, timeout=10).status_code == 404
        assert requests.post(f"{api}/web2/reboot", headers=auth, timeout=10).status_code == 404
        assert requests.delete(f"{api}/web2", headers=auth, timeout=10).status_code == 200
        assert names(inv) == ["web1"] and "web2" not in exp.app.inventory.servers


def csv_rows(good: Sshd, other: Sshd, closed_port: int) -> str:
    rows = ["name,host,port,user,labels"]
    for i in range(17):
        rows.append(f"host{i:02d},127.0.0.1,{good.port},root,rack=r{i % 3};env=prod")
    rows.append(f"refused,127.0.0.1,{closed_port},root,")
    rows.append(f"unknownkey,127.0.0.1,{other.port},root,")  # its host key is not pinned
    rows.append(f"badauth,127.0.0.1,{good.port},nosuchuser,")
    return "\n".join(rows) + "\n"


def test_csv_import_of_20_hosts_reports_3_failures_and_is_idempotent(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inv = inventory(tmp_path, ssh_keys, ssh_server)
    with sshd(tmp_path / "other", ssh_keys) as other, running_exporter(inv) as exp:
        csv_file = tmp_path / "fleet.csv"
        csv_file.write_text(csv_rows(ssh_server, other, free_port()))
        assert stacksense_cli.main(servers_cli(inv, exp, "import", str(csv_file))) == 1
        out = capsys.readouterr().out
        assert "[20/20]" in out
        assert "import: 20 rows: 17 added, 0 updated, 0 unchanged, 3 failed" in out
        failures = {
            line.split()[2].rstrip(":"): line
            for line in out.splitlines()
            if line.startswith("  line ")
        }
        assert set(failures) == {"refused", "unknownkey", "badauth"}
        assert "refused:" in failures["refused"]
        assert "host_key:" in failures["unknownkey"]
        assert "auth:" in failures["badauth"]
        assert len(exp.app.inventory.servers) == 18  # reloaded once
        assert exp.app.inventory.servers["host05"].labels == {"rack": "r2", "env": "prod"}
        written = inv.read_text()

        assert stacksense_cli.main(servers_cli(inv, exp, "import", str(csv_file))) == 1
        out = capsys.readouterr().out
        assert "import: 20 rows: 0 added, 0 updated, 17 unchanged, 3 failed" in out
        assert inv.read_text() == written


@pytest.fixture
def authorized_keys_user() -> Iterator[pwd.struct_passwd]:
    """A throwaway user with a home of its own, whose ~/.ssh nothing else uses (root only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a user")
    name = f"ss-rm-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="stacksense-remove-home-"))
    subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", name], check=True)
    try:
        # A user without a password is "locked", and sshd (without PAM) refuses it any login.
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n".encode(), check=True)
        entry = pwd.getpwnam(name)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o755)
        yield entry
    finally:
        subprocess.run(["userdel", "-f", name], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_add_with_a_password_deploys_the_key_and_remove_key_takes_it_off(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    authorized_keys_user: pwd.struct_passwd,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = authorized_keys_user
    ssh_dir = Path(user.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    keys_file = ssh_dir / "authorized_keys"
    own = Path(str(ssh_keys.protected_key) + ".pub").read_text()  # the operator's own key
    keys_file.write_text(own)
    keys_file.chmod(0o600)
    os.chown(ssh_dir, user.pw_uid, user.pw_gid)
    os.chown(keys_file, user.pw_uid, user.pw_gid)
    port = free_port()
    work = tmp_path / "sshd"
    work.mkdir()
    (work / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {ssh_keys.host_key}",
                f"PidFile {work}/sshd.pid",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "UsePAM no",
                "StrictModes yes",
                "PasswordAuthentication yes",
                f"AllowUsers {user.pw_name}",
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(work / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("SS_TEST_PW", PASSWORD)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), timeout=10, what="sshd")
        known = tmp_path / "known_hosts"
        known.write_text("")
        inv = tmp_path / "servers.yml"
        inv.write_text(
            f"# Our fleet. Keep this comment.\nknown_hosts: {known}\n"
            f"credentials:\n  default:\n    key_file: {ssh_keys.client_key}\n"
        )
        nowhere = RunningExporter(None, f"http://127.0.0.1:{free_port()}")  # type: ignore[arg-type]
        # `servers add` with a password is today's onboarding: the key is deployed.
        assert (
            stacksense_cli.main(
                servers_cli(
                    inv,
                    nowhere,
                    "add",
                    "web1",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--user",
                    user.pw_name,
                    "--password-env",
                    "SS_TEST_PW",
                    "--trust-on-first-use",
                )
            )
            == 0
        )
        out, err = capsys.readouterr()
        assert "web1: added (key deployed)" in out and "not reachable" in err
        assert PASSWORD not in out + err
        monitoring = Path(str(ssh_keys.client_key) + ".pub").read_text().split()[:2]
        lines = keys_file.read_text().splitlines()
        assert lines[0] == own.strip() and lines[1].split()[:2] == monitoring
        assert "# Our fleet. Keep this comment." in inv.read_text()

        assert stacksense_cli.main(servers_cli(inv, nowhere, "remove", "web1")) == 1
        assert "is the last server" in capsys.readouterr().err
        inv.write_text("allow_empty: true\n" + inv.read_text())
        with running_exporter(inv) as exp:
            assert exp.probe_samples("web1")["stacksense_probe_success"] == 1
            assert stacksense_cli.main(servers_cli(inv, exp, "remove", "web1", "--remove-key")) == 0
            assert "removed (key removed on the host)" in capsys.readouterr().out
        assert keys_file.read_text() == own  # the operator's own key stays
        assert keys_file.stat().st_mode & 0o777 == 0o600
        assert yaml.safe_load(inv.read_text())["servers"] == []
    finally:
        stop(proc)


def test_cli_reload_uses_the_exporters_token_and_says_when_it_is_refused(
    tmp_path: Path,
    ssh_keys: SshdKeys,
    ssh_server: Sshd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inv = inventory(tmp_path, ssh_keys, ssh_server)
    token = tmp_path / "reload.token"
    token.write_text("reload-s3cret\n")
    with running_exporter(inv, server_options={"reload_token_file": token}) as exp:
        assert stacksense_cli.main(servers_cli(inv, exp, "suspend", "web1")) == 1
        err = capsys.readouterr().err
        assert "the inventory was changed but the exporter's reload answered 401" in err
        assert "reload-s3cret" not in err
        assert exp.app.inventory.servers["web1"].suspended is False  # not reloaded
        assert (
            stacksense_cli.main(servers_cli(inv, exp, "resume", "web1", "--token-file", str(token)))
            == 0
        )
        assert "exporter reloaded" in capsys.readouterr().out
