"""Disk full under gunicorn with 2 workers: every write path answers a JSON 503 (never
gunicorn's HTML 500), /-/ready is 503 while the store's volume lacks the documented
headroom, and both recover by themselves once space is back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from alert_router.api.ops import MIN_HEADROOM
from tests.peers.router import RouterProcess, router
from tests.peers.util import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]
VOLUME_MB = 24


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of its own for the store: filling it fills nothing else."""
    path = tmp_path / "vol"
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME_MB}M", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def live(tmp_path: Path, volume: Path) -> Iterator[RouterProcess]:
    config = {
        "route": {"receiver": "null", "group_by": ["alertname"], "group_wait": "1h"},
        "receivers": [{"name": "null"}],
        "storage": {"path": str(volume / "router.db")},
        "web": {"max_request_bytes": 1024 * 1024},
    }
    with router(tmp_path / "run", config, workers=2) as proc:
        yield proc


def _fill(volume: Path) -> Path:
    """Write a file until the volume has no byte left."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 18, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _batch(tag: str, n: int = 400) -> list[dict[str, Any]]:
    return [
        {
            "labels": {"alertname": f"Full{tag}", "n": str(i)},
            "annotations": {"description": "d" * 1500},
        }
        for i in range(n)
    ]


def _silence(tag: str) -> dict[str, Any]:
    return {
        "matchers": [{"name": "alertname", "value": tag, "isRegex": False}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "me",
        "comment": "c" * 4000,
    }


def _ready(proc: RouterProcess) -> int:
    return requests.get(
        f"{proc.url}/-/ready", timeout=10, headers={"Connection": "close"}
    ).status_code


def test_disk_full_is_a_json_503_and_recovers_by_itself(live, volume):
    assert (
        requests.post(
            f"{live.url}/api/v2/alerts", json=_batch("Before", 10), headers=live.auth, timeout=30
        ).status_code
        == 200
    )
    assert _ready(live) == 200

    filler = _fill(volume)
    wait_for(
        lambda: all(_ready(live) == 503 for _ in range(4)),
        timeout=15,
        what="/-/ready 503 on both workers with the volume full",
    )

    answers: dict[str, list[int]] = {}
    writes = [
        ("/api/v2/alerts", lambda i: _batch(str(i))),
        (
            "/api/v1/alerts",
            lambda i: {
                "alerts": [{"name": f"G{i}-{n}", "description": "d" * 1500} for n in range(400)]
            },
        ),
        ("/api/v2/silences", lambda i: _silence(f"S{i}")),
    ]
    for path, body in writes:
        codes = answers.setdefault(path, [])
        for i in range(30):
            resp = requests.post(f"{live.url}{path}", json=body(i), headers=live.auth, timeout=30)
            codes.append(resp.status_code)
            assert resp.status_code in (200, 503), (path, resp.status_code, resp.text[:300])
            if resp.status_code == 503:
                assert resp.headers["Content-Type"].startswith("application/json")
                message = resp.json()
                message = message if isinstance(message, str) else message["error"]
                assert "storage unavailable" in message
                break
    assert all(codes[-1] == 503 for codes in answers.values()), answers
    assert _ready(live) == 503

    filler.unlink()
    wait_for(
        lambda: all(_ready(live) == 200 for _ in range(4)),
        timeout=30,
        what="/-/ready 200 again on both workers",
    )
    for _ in range(3):
        resp = requests.post(
            f"{live.url}/api/v2/alerts",
            json=_batch("After", 5),
            headers={**live.auth, "Connection": "close"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text[:300]
    resp = requests.post(
        f"{live.url}/api/v2/silences", json=_silence("After"), headers=live.auth, timeout=30
    )
    assert resp.status_code == 200

    def after_stored() -> bool:
        alerts = requests.get(
            f"{live.url}/api/v2/alerts", params={"filter": 'alertname="FullAfter"'}, timeout=30
        ).json()
        return len(alerts) == 5

    wait_for(after_stored, timeout=60, what="alerts posted after the disk was freed stored")
    assert MIN_HEADROOM < VOLUME_MB * 1024 * 1024 // 2
