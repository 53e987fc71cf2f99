"""The console's server actions against a real exporter (in process, its own inventory file
and API token): suspend / resume edit the inventory, a test probe names the real failure,
an add is validated by the exporter (and logged in to), a remove takes the entry out."""

from __future__ import annotations

import html
import re
from pathlib import Path

import yaml

from alert_router.app import create_app
from alert_router.console.users import Users
from tests.console.session import PASSWORD, console_config, login
from tests.exporter.harness import running_exporter, write_inventory
from tests.peers.sshd import SshdKeys
from tests.peers.util import free_port

TOKEN = "real-exporter-api-token"


def flashes(page: str) -> list[str]:
    return [
        html.unescape(" ".join(m.split()))
        for m in re.findall(
            r'<p class="flash [a-z]+" role="(?:status|alert)"[^>]*>(.*?)</p>', page, re.S
        )
    ]


def entries(inv: Path) -> dict[str, dict]:
    return {s["name"]: s for s in yaml.safe_load(inv.read_text())["servers"]}


def test_actions_through_a_real_exporter(tmp_path: Path, ssh_keys: SshdKeys, peers) -> None:
    closed = free_port()
    known = tmp_path / "known_hosts"
    known.write_text("")
    inv = write_inventory(
        tmp_path / "servers.yml",
        [{"name": "db-1", "host": "127.0.0.1", "port": closed}],
        {"default": {"key_file": str(ssh_keys.client_key)}},
        known,
    )
    (tmp_path / "api.token").write_text(TOKEN + "\n")
    peers.set("db-1", "online")
    with running_exporter(inv, server_options={"api_token_file": tmp_path / "api.token"}) as exp:
        (tmp_path / "console.token").write_text(TOKEN + "\n")
        app = create_app(
            console_config(
                tmp_path,
                peers.url,
                exporter_url=exp.url,
                exporter_token_file=str(tmp_path / "console.token"),
            ),
            start_background=False,
        )
        try:
            users = Users(app.extensions["stacksense"].store)
            users.add("otto", "operator", PASSWORD)
            users.add("ada", "admin", PASSWORD)
            op = app.test_client()
            csrf = login(op, "otto")

            op.post("/console/servers/db-1/test", data={"csrf": csrf})
            [msg] = flashes(op.get("/console/servers/db-1").text)
            assert msg.startswith("Test probe of db-1 failed in ") and ": refused (" in msg, msg

            # A diagnosis of the unreachable host: the exporter's report says why it is empty.
            diag = op.post("/console/servers/db-1/diagnose", data={"csrf": csrf})
            assert diag.status_code == 200, diag.text
            shown = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", diag.text).split()))
            assert f"Incomplete report: db-1 (127.0.0.1:{closed}): connection refused." in shown, (
                shown
            )
            assert "disk missing" in shown and "What to do: " in shown, shown

            op.post("/console/servers/db-1/suspend", data={"csrf": csrf})
            page = op.get("/console/servers/db-1").text
            assert "Monitoring of db-1 suspended (suspended)." in flashes(page)
            assert entries(inv)["db-1"].get("suspended") is True
            assert exp.app.inventory.servers["db-1"].suspended
            assert "Resume monitoring" in page and "Suspend monitoring" not in page
            op.post("/console/servers/db-1/resume", data={"csrf": csrf})
            assert "suspended" not in entries(inv)["db-1"]
            assert not exp.app.inventory.servers["db-1"].suspended

            admin = app.test_client()
            csrf = login(admin, "ada")
            assert ">db-1</a>" in admin.get("/console/inventory").text
            bad = admin.post(
                "/console/inventory",
                data={"csrf": csrf, "name": "web-9", "host": "127.0.0.1", "port": "http"},
            )
            assert bad.status_code == 400
            assert "Not added: port: expected 1-65535, got 'http'" in html.unescape(bad.text)
            refused = admin.post(
                "/console/inventory",
                data={"csrf": csrf, "name": "web-9", "host": "127.0.0.1", "port": str(closed)},
            )
            assert refused.status_code == 400 and "Not added: refused" in refused.text
            added = admin.post(
                "/console/inventory",
                data={"csrf": csrf, "name": "laptop", "mode": "push", "labels": "env=dev"},
            )
            assert added.status_code == 302, added.text
            assert entries(inv)["laptop"] == {
                "name": "laptop",
                "mode": "push",
                "labels": {"env": "dev"},
            }
            assert "Server laptop added." in flashes(admin.get("/console/inventory").text)

            removed = admin.post(
                "/console/inventory/laptop/remove", data={"csrf": csrf, "confirm": "yes"}
            )
            assert removed.status_code == 302
            assert set(entries(inv)) == {"db-1"} and "laptop" not in exp.app.inventory.servers

            # The wrong token: the exporter refuses, the page says what to fix.
            (tmp_path / "console.token").write_text("stale-token\n")
            op.post("/console/servers/db-1/suspend", data={"csrf": login(op, "otto")})
            [msg] = flashes(op.get("/console/servers/db-1").text)
            assert "the exporter refused the console's token" in msg
            assert "suspended" not in entries(inv)["db-1"]
        finally:
            app.extensions["stacksense"].close()
