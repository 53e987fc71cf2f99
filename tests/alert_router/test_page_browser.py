"""The web page in a real headless Chromium: alerts, incidents and silences render; markup in
label values stays text (no script runs)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from tests.peers.router import router
from tests.peers.util import wait_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INJECTED = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_renders_and_escapes_in_a_browser(tmp_path):
    config = {
        "route": {"receiver": "null", "group_by": ["alertname"], "group_wait": "0s"},
        "receivers": [{"name": "null"}],
    }
    with router(tmp_path / "router", config) as proc:
        requests.post(
            f"{proc.url}/api/v2/alerts",
            headers=proc.auth,
            timeout=10,
            json=[
                {
                    "labels": {"alertname": "DiskAlmostFull", "server": "web-1"},
                    "annotations": {"summary": INJECTED},
                }
            ],
        ).raise_for_status()
        wait_for(
            lambda: requests.get(f"{proc.url}/api/v1/incidents", timeout=5).json(),
            what="incident opened",
        )
        profile = tmp_path / "chromium-profile"
        result = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--log-level=3",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=2000",
                "--dump-dom",
                f"{proc.url}/",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    dom = result.stdout
    assert "<title>StackSense alert router</title>" in dom  # the injected onerror never ran
    assert "DiskAlmostFull" in dom and "web-1" in dom
    assert "DiskAlmostFull on web-1" in dom  # the incident row
    assert "&lt;img src=x onerror=" in dom  # shown as text
    assert "<img" not in dom
