"""The console in a real headless Chromium against the router under gunicorn, a real
Prometheus with backfilled history and a fake rule-engine API that the tests change live.

Screenshots of each view: `STACKSENSE_SCREENSHOTS=1 pytest tests/console` rewrites the
committed ones in docs/screenshots/ (other runs leave the working tree untouched).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from alert_router.console.users import Users
from alert_router.store import Store
from tests.console.fake_exporter import fake_exporter
from tests.console.fake_peers import fake_peers
from tests.console.session import PASSWORD, TOKEN, console_config
from tests.peers import chromium as chromium_peer
from tests.peers.openmetrics import History
from tests.peers.prometheus import backfill, prometheus
from tests.peers.router import router
from tests.peers.util import wait_for
from tests.peers.webhook import webhook_receiver

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_peer.available() is not None, reason=str(chromium_peer.available())
    ),
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
XSS = "<img src=x onerror=\"document.title='pwned'\">"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAIT_MS = 20_000


def history(now: float) -> str:
    h = History()
    start = now - 3 * 3600
    for i, server in enumerate(("web-1", "db-1")):
        labels = {"server": server, "job": "stacksense"}

        def wave(t: float, base: float = 0.3 + 0.2 * i) -> float:
            return base + 0.15 * ((t // 600) % 3) / 2

        h.fill("stacksense_cpu_usage_ratio", labels, start, now - 20, 30, wave)
        h.fill(
            "stacksense_memory_usage_ratio",
            labels,
            start,
            now - 20,
            30,
            lambda t, b=0.5 + 0.1 * i: b,
        )
        h.fill(
            "stacksense_filesystem_usage_ratio",
            {**labels, "mountpoint": "/"},
            start,
            now - 20,
            30,
            lambda t, b=0.6 + 0.2 * i: b + (t - start) / 3e5,
        )
        h.fill("node_load1", labels, start, now - 20, 30, lambda t: 0.4 + ((t // 900) % 2))
        h.fill(
            "node_network_receive_bytes_total",
            {**labels, "device": "eth0"},
            start,
            now - 20,
            30,
            lambda t: (t - start) * 20_000,
            kind="counter",
        )
        h.fill(
            "node_network_transmit_bytes_total",
            {**labels, "device": "eth0"},
            start,
            now - 20,
            30,
            lambda t: (t - start) * 5_000,
            kind="counter",
        )
        h.fill("node_boot_time_seconds", labels, start, now - 20, 30, lambda t: now - 86400 * 3.5)
        h.fill("node_time_seconds", labels, start, now - 20, 30, lambda t: t)
        h.fill(
            "stacksense_last_heartbeat_timestamp_seconds", labels, start, now - 20, 30, lambda t: t
        )
    return h.render()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-browser")
    backfill(history(time.time()), tmp / "prom-data")
    with (
        fake_peers() as peers,
        prometheus(tmp, data_dir=tmp / "prom-data") as prom,
        webhook_receiver() as hook,
        fake_exporter() as exporter,
    ):
        exporter.sd_from = peers  # the label filter reads /sd from the exporter too
        exporter.add_server("web-1", labels={"env": "prod", "role": "web"})
        exporter.add_server("db-1", host="10.0.0.6")
        peers.set("web-1", "online", since=time.time() - 3600)
        peers.set("db-1", "warning", health={"color": "orange", "score": 62.0})
        peers.labels["web-1"] = {"env": "prod", "role": "web"}
        peers.history["web-1"] = [
            {"time": time.time() - 3600, "status": "pending"},
            {"time": time.time() - 3590, "status": "online"},
        ]
        (tmp / "router").mkdir()
        config = console_config(
            tmp / "router", peers.url, prom.url, refresh_interval="1s", exporter_url=exporter.url
        )
        config["receivers"] = [{"name": "null", "webhook_configs": [{"url": hook.url}]}]
        store = Store(str(tmp / "router" / "router.db"))
        users = Users(store)
        users.add("vera", "viewer", PASSWORD)
        users.add("otto", "operator", PASSWORD)
        users.add("ada", "admin", PASSWORD)
        store.close()
        from playwright.sync_api import expect

        expect.set_options(timeout=WAIT_MS)  # assertions poll as long as page waits
        with (
            router(tmp / "router", config, token=TOKEN, workers=2, threads=4) as proc,
            chromium_peer.chromium() as browser,
        ):
            yield {
                "peers": peers,
                "prom": prom,
                "router": proc,
                "browser": browser,
                "hook": hook,
                "exporter": exporter,
            }


def fire(proc, labels, annotations):
    requests.post(
        f"{proc.url}/api/v2/alerts",
        headers=AUTH,
        timeout=10,
        json=[{"labels": labels, "annotations": annotations}],
    ).raise_for_status()


def open_page(stack, name, width=1280, height=860):
    context = stack["browser"].new_context(
        viewport={"width": width, "height": height}, timezone_id="Europe/Paris"
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{stack['router'].url}/console/")
    assert "/console/login" in page.url
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/(\?.*)?$"))
    return page


def shot(page, name):
    """A screenshot of the view: into docs/screenshots/ with STACKSENSE_SCREENSHOTS=1 (to
    refresh the committed ones), else taken and dropped (the view must still render)."""
    if os.environ.get("STACKSENSE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))
    else:
        assert page.screenshot()


def text_of(page, selector):
    return page.locator(selector).first.inner_text()


def test_fleet_shows_a_host_go_offline_without_reload(stack):
    from playwright.sync_api import expect

    page = open_page(stack, "otto")
    row = page.locator('tr[data-server="web-1"]')
    expect(row.locator("[data-status]")).to_have_text("online")
    # Figures from the real Prometheus: memory 50 %, uptime 3 days, a heartbeat.
    expect(row).to_contain_text("50%")
    expect(row).to_contain_text("3d")
    expect(page.locator("#conn")).to_contain_text("live")
    assert "Europe/Paris" in text_of(page, "#conn")
    shot(page, "fleet")
    page.evaluate("window.__marker = 1")  # survives only if the page is never reloaded
    stack["peers"].set(
        "web-1", "offline", reason="refused", reason_text="connection refused on port 22"
    )
    expect(row.locator("[data-status]")).to_have_text("offline")
    expect(row).to_contain_text("connection refused on port 22")
    assert page.evaluate("window.__marker") == 1
    # Critical first: the offline host is now the first row.
    assert page.locator("tbody tr").first.get_attribute("data-server") == "web-1"
    phone = stack["browser"].new_context(
        viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state()
    )
    small = phone.new_page()
    small.goto(page.url)
    small.wait_for_selector('tr[data-server="web-1"]')
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the fleet overflows a phone screen ({width}px)"
    shot(small, "fleet-phone")
    phone.close()
    page.context.close()


def test_server_page_shows_charts_with_data(stack):
    page = open_page(stack, "vera")
    page.goto(f"{stack['router'].url}/console/servers/web-1?range=24h")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    lines = page.locator("svg.chart polyline")
    assert lines.count() >= 5, page.content()[:3000]
    labels = [charts.nth(i).get_attribute("aria-label") for i in range(5)]
    assert not any("no data" in label for label in labels), labels
    assert "pending" in text_of(page, "main")  # status history from the rule engine
    shot(page, "server")
    page.goto(f"{stack['router'].url}/console/servers/web-1?range=1h")
    assert page.locator("svg.chart polyline").count() >= 5
    page.context.close()


def test_viewer_cannot_acknowledge_and_a_post_without_csrf_is_refused(stack):
    proc = stack["router"]
    fire(
        proc,
        {"alertname": "DiskAlmostFull", "server": "db-1", "severity": "warning"},
        {"summary": "disk / 85% full"},
    )
    wait_for(
        lambda: requests.get(f"{proc.url}/api/v1/incidents", timeout=5).json(),
        timeout=20,
        what="incident opened",
    )
    page = open_page(stack, "vera")
    page.goto(f"{proc.url}/console/alerts")
    page.wait_for_selector("[data-incident]")
    assert page.locator("text=Acknowledge").count() == 0
    incident = page.locator("[data-incident]").first.get_attribute("data-incident")
    token = page.evaluate("document.querySelector('input[name=csrf]').value")
    status = page.evaluate(
        """async ([id, token]) => (await fetch('/console/incidents/' + id + '/acknowledge',
           {method: 'POST', body: new URLSearchParams({csrf: token, reason: 'x'})})).status""",
        [incident, token],
    )
    assert status == 403  # a viewer, even with a valid token
    page.context.close()
    operator = open_page(stack, "otto")
    status = operator.evaluate(
        """async (id) => (await fetch('/console/incidents/' + id + '/acknowledge',
           {method: 'POST', body: new URLSearchParams({reason: 'no token'})})).status""",
        incident,
    )
    assert status == 403  # an operator without the CSRF token
    state = requests.get(f"{proc.url}/api/v1/incidents/{incident}", timeout=5).json()["state"]
    assert state == "open"
    operator.context.close()


def test_operator_acknowledges_an_incident_and_silences_from_the_alert(stack):
    from playwright.sync_api import expect

    proc = stack["router"]
    fire(
        proc,
        {"alertname": "ServerOffline", "server": "web-1", "severity": "critical"},
        {"summary": "web-1 is offline: connection refused"},
    )
    page = open_page(stack, "otto")
    page.goto(f"{proc.url}/console/alerts")
    row = page.locator("[data-incident]", has_text="ServerOffline on web-1")
    expect(row).to_have_count(1)
    shot(page, "alerts")
    row.locator("input[name=reason]").fill("on it")
    row.locator("button", has_text="Acknowledge").click()
    expect(page.locator(".flash.ok")).to_contain_text("acknowledged by otto")
    incident = row.get_attribute("data-incident")
    got = requests.get(f"{proc.url}/api/v1/incidents/{incident}", timeout=5).json()
    assert got["state"] == "acknowledged" and got["acknowledged_by"] == "otto"
    assert got["reason"] == "on it"
    item = page.locator("li[data-fingerprint]", has_text="ServerOffline")
    item.locator("a", has_text="Silence").click()
    page.wait_for_url(re.compile(r".*/console/silences/new\?fingerprint=.*"))
    values = page.locator("input[name=m_value]").evaluate_all("els => els.map(e => e.value)")
    assert "ServerOffline" in values and "web-1" in values
    page.fill("input[name=comment]", "replacing the NIC")
    page.fill("input[name=duration_hours]", "3")
    shot(page, "silence-form")
    page.click("button:has-text('Create silence')")
    page.wait_for_url(re.compile(r".*/console/silences$"))
    expect(page.locator("[data-silence]")).to_contain_text("replacing the NIC")
    shot(page, "silences")
    silences = requests.get(f"{proc.url}/api/v2/silences", timeout=5).json()
    [silence] = [s for s in silences if s["status"]["state"] == "active"]
    assert silence["createdBy"] == "otto"
    assert {"name": "server", "value": "web-1", "isRegex": False, "isEqual": True} in silence[
        "matchers"
    ]
    # The alert is now muted: the router's API says so.
    alerts = requests.get(
        f"{proc.url}/api/v2/alerts", timeout=5, params={"filter": "alertname=ServerOffline"}
    ).json()
    assert alerts[0]["status"]["silencedBy"] == [silence["id"]]
    page.goto(f"{proc.url}/console/incidents/{incident}")
    expect(page.locator("main")).to_contain_text("on it")
    shot(page, "incident")
    page.context.close()


def test_maintenance_silence_from_the_server_page_mutes_the_next_notification(stack):
    from playwright.sync_api import expect

    proc, hook = stack["router"], stack["hook"]
    page = open_page(stack, "otto")
    page.goto(f"{proc.url}/console/servers/db-1")
    page.fill("input[name=duration_hours]", "1")
    page.fill("input[name=comment]", "disk swap")
    page.click("button:has-text('Silence db-1')")
    expect(page.locator(".flash.ok")).to_contain_text("Silenced db-1 until")
    # One request, two alerts: the dispatcher handles them in the same step. The control
    # server is a fresh one (web-1's ServerOffline, fired earlier, inhibits its alerts).
    requests.post(
        f"{proc.url}/api/v2/alerts",
        headers=AUTH,
        timeout=10,
        json=[
            {
                "labels": {"alertname": "HighLoad", "server": server, "severity": "warning"},
                "annotations": {"summary": "load"},
            }
            for server in ("db-1", "app-1")
        ],
    ).raise_for_status()

    def high_load_servers() -> set[str]:
        return {
            a["labels"]["server"] for a in hook.alerts() if a["labels"]["alertname"] == "HighLoad"
        }

    wait_for(lambda: "app-1" in high_load_servers(), timeout=20, what="HighLoad on app-1 notified")
    assert "db-1" not in high_load_servers()  # muted by the maintenance silence
    page.context.close()


def test_markup_in_labels_renders_as_text(stack):
    from playwright.sync_api import expect

    proc = stack["router"]
    stack["peers"].set(XSS, "offline", reason="auth", reason_text=XSS)
    stack["peers"].labels[XSS] = {"team": XSS}
    fire(
        proc,
        {"alertname": "Injected", "server": XSS, "severity": "critical"},
        {"summary": XSS, "description": XSS},
    )
    page = open_page(stack, "otto")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ("/console/", "/console/alerts", "/console/history", "/console/incidents"):
        page.goto(f"{proc.url}{path}")
        # The fleet may first show the peers' previous answer (shared for 2 s): wait for
        # the live region to bring the new server in.
        expect(page.locator("main")).to_contain_text(XSS)
        page.wait_for_timeout(300)  # let an injected onerror run, if one could
        assert page.title() != "pwned" and not dialogs, path
        assert page.locator("img[src=x]").count() == 0, path
    stack["peers"].servers.pop(XSS)
    page.context.close()


def test_keyboard_reaches_a_server_page_with_a_visible_focus(stack):
    page = open_page(stack, "vera")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    target = "/console/servers/db-1"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == target:
            break
    else:
        raise AssertionError("Tab never reached the db-1 link")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "no visible focus"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/console/servers/db-1$"))
    page.context.close()


def test_history_and_users_views_for_an_admin(stack):
    from playwright.sync_api import expect

    page = open_page(stack, "ada")
    page.goto(f"{stack['router'].url}/console/history")
    expect(page.locator("main")).to_contain_text("acknowledged")  # the operator's action
    shot(page, "history")
    page.goto(f"{stack['router'].url}/console/users")
    add = page.locator("form", has=page.locator("input[name=action][value=add]"))
    add.locator("input[name=name]").fill("nina")
    add.locator("select[name=role]").select_option("viewer")
    add.locator("button").click()
    expect(page.locator("#new-password")).not_to_be_empty()
    expect(page.locator("main")).to_contain_text("nina")
    shot(page, "users")
    page.context.close()


def test_operator_suspends_and_tests_and_an_admin_manages_the_inventory(stack):
    from playwright.sync_api import expect

    base = stack["router"].url
    page = open_page(stack, "otto")
    page.goto(f"{base}/console/servers/db-1")
    page.get_by_role("button", name="Suspend monitoring").click()
    expect(page.locator(".flash.ok")).to_contain_text("Monitoring of db-1 suspended")
    expect(page.get_by_role("button", name="Resume monitoring")).to_be_visible()
    assert stack["exporter"].servers["db-1"]["suspended"] is True
    page.get_by_role("button", name="Resume monitoring").click()
    expect(page.locator(".flash.ok")).to_contain_text("Monitoring of db-1 resumed")
    page.get_by_role("button", name="Run a test probe").click()
    expect(page.locator(".flash.ok")).to_contain_text("Test probe of db-1 succeeded")
    page.context.close()

    page = open_page(stack, "ada")
    page.get_by_role("link", name="Inventory").click()
    page.wait_for_url(re.compile(r".*/console/inventory$"))
    form = page.locator("form", has=page.get_by_role("button", name="Add server"))
    form.locator("input[name=name]").fill("web-9")
    form.locator("input[name=host]").fill("10.0.0.9")
    form.locator("input[name=port]").fill("http")
    form.locator("input[name=labels]").fill("env=prod, rack=r1")
    form.get_by_role("button", name="Add server").click()
    expect(page.locator("#add-error")).to_contain_text("port: expected 1-65535, got 'http'")
    form.locator("input[name=port]").fill("2222")  # the other values were kept
    form.get_by_role("button", name="Add server").click()
    expect(page.locator(".flash.ok")).to_contain_text("Server web-9 added.")
    shot(page, "inventory")
    page.get_by_role("row", name=re.compile("web-9")).get_by_role("link", name="Remove…").click()
    expect(page.locator("h1")).to_have_text("Remove web-9?")
    page.get_by_role("button", name="Remove web-9").click()
    expect(page.locator(".flash.ok")).to_contain_text("Server web-9 removed")
    assert "web-9" not in stack["exporter"].servers
    page.context.close()


def test_connection_lost_is_shown_and_recovers(stack):
    from playwright.sync_api import expect

    page = open_page(stack, "vera")
    expect(page.locator("#conn")).to_contain_text("live")
    pgid = os.getpgid(stack["router"].proc.pid)
    os.killpg(pgid, signal.SIGSTOP)  # the router hangs: polls time out
    try:
        expect(page.locator("#conn")).to_contain_text("connection lost")
        expect(page.locator("body")).to_have_attribute("data-connection", "lost")
        shot(page, "connection-lost")
    finally:
        os.killpg(pgid, signal.SIGCONT)
    expect(page.locator("#conn")).to_contain_text("live")
    page.context.close()
