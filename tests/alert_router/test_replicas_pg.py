"""Two router processes (gunicorn, as served) sharing one real PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psutil
import pytest
import requests
import yaml

from tests.alert_router import test_durability as durability
from tests.peers.postgres import PostgresServer
from tests.peers.router import RouterExited, RouterProcess, router
from tests.peers.util import free_port, wait_for
from tests.peers.webhook import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as hook:
        yield hook


def config(receiver: WebhookReceiver) -> dict:
    return {
        # '...': every alert is its own group, so each alert is one notification.
        "route": {
            "receiver": "hook",
            "group_by": ["..."],
            "group_wait": "1s",
            "group_interval": "1s",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": receiver.url}]}],
        "delivery": {"initial_backoff": "200ms", "max_backoff": "500ms"},
    }


def alert(i: int) -> dict:
    return {
        "labels": {"alertname": "Replica", "server": f"host-{i}", "n": str(i)},
        "endsAt": "2099-01-01T00:00:00Z",
    }


def delivered(receiver: WebhookReceiver) -> Counter[str]:
    return Counter(a["labels"]["n"] for a in receiver.alerts())


def post(proc: RouterProcess, numbers: range) -> None:
    resp = requests.post(
        f"{proc.url}/api/v2/alerts", json=[alert(i) for i in numbers], headers=proc.auth, timeout=10
    )
    assert resp.status_code == 200, resp.text


def leader(pg: PostgresServer, db: str, procs: list[RouterProcess]) -> RouterProcess:
    """The router whose gunicorn worker holds the dispatcher lease."""
    with pg.connect(db) as conn:
        row = conn.execute("SELECT holder FROM leases WHERE name = 'dispatcher'").fetchone()
    assert row is not None
    pid = int(str(row[0]).split("/")[1])
    parents = {p.pid for p in psutil.Process(pid).parents()}
    return next(p for p in procs if p.proc is not None and p.proc.pid in parents)


def test_two_replicas_deliver_once_survive_a_sigkill_and_share_reloads(
    tmp_path: Path, pg_server: PostgresServer, receiver: WebhookReceiver
) -> None:
    db = pg_server.create_database()
    url = pg_server.url(db)
    with (
        router(tmp_path / "a", config(receiver), storage_url=url, password=pg_server.password) as a,
        router(tmp_path / "b", config(receiver), storage_url=url, password=pg_server.password) as b,
    ):
        # Alerts posted to either replica, some to both: each is notified exactly once.
        post(a, range(0, 40))
        post(b, range(30, 70))
        wait_for(lambda: len(delivered(receiver)) == 70, timeout=30, what="70 alerts delivered")
        assert set(delivered(receiver).values()) == {1}

        # A reload on one replica reaches the other, as the config it accepted.
        changed = yaml.safe_load(a.config_path.read_text())
        changed["receivers"].append({"name": "extra", "webhook_configs": [{"url": receiver.url}]})
        a.config_path.write_text(yaml.safe_dump(changed))
        assert requests.post(f"{a.url}/-/reload", headers=a.auth, timeout=10).status_code == 200

        def b_config() -> str:
            status = requests.get(f"{b.url}/api/v2/status", headers=b.auth, timeout=5).json()
            return str(status["config"]["original"])

        wait_for(lambda: "extra" in b_config(), timeout=15, what="b follows a's reload")
        for proc in (a, b):
            body = requests.get(f"{proc.url}/api/v2/status", headers=proc.auth, timeout=5).text
            assert pg_server.password not in body

        # The leader is SIGKILLed while notifications are pending (receiver down) and alerts
        # wait to be merged: the other replica takes over and delivers each exactly once.
        lead = leader(pg_server, db, [a, b])
        other = b if lead is a else a
        receiver.stop()
        post(other, range(100, 120))
        with pg_server.connect(db) as conn:
            wait_for(
                lambda: (
                    conn.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0]
                    == 20
                ),
                timeout=15,
                what="20 notifications pending at the leader",
            )
        post(other, range(120, 130))  # queued for the next merge
        killed_at = time.monotonic()
        lead.kill()
        receiver.start()
        wait_for(
            lambda: {str(i) for i in range(100, 130)} <= set(delivered(receiver)),
            timeout=30,
            what="the survivor delivers what was pending",
        )
        # The dead leader's session ended: no waiting for its 15 s lease to run out.
        assert time.monotonic() - killed_at < 12
        assert leader(pg_server, db, [other]) is other
        post(other, range(130, 135))
        wait_for(lambda: len(delivered(receiver)) == 105, timeout=30, what="105 delivered")
        assert set(delivered(receiver).values()) == {1}
        for proc in (a, b):
            assert pg_server.password not in proc.log()


def test_unreachable_database_stops_the_router_naming_the_host(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with (
        pytest.raises(RouterExited) as info,
        router(
            tmp_path,
            {"route": {"receiver": "r"}, "receivers": [{"name": "r"}]},
            storage_url=f"postgresql://router@127.0.0.1:{port}/alerts",
            password="Not-In-Any-Log-7",
        ),
    ):
        pass
    assert f"cannot connect to PostgreSQL at router@127.0.0.1:{port}/alerts" in info.value.log
    assert "Not-In-Any-Log-7" not in info.value.log


def test_serve_refuses_an_unreachable_database_before_gunicorn_starts(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    (tmp_path / "pw").write_text("Not-In-Any-Log-8\n")
    (tmp_path / "token").write_text("t0ken-for-the-test\n")
    (tmp_path / "router.yml").write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "r"},
                "receivers": [{"name": "r"}],
                "auth": {"tokens_file": str(tmp_path / "token")},
                "storage": {
                    "url": f"postgresql://router@127.0.0.1:{port}/alerts",
                    "password_file": str(tmp_path / "pw"),
                },
            }
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alert_router.cli",
            "-c",
            str(tmp_path / "router.yml"),
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"cannot connect to PostgreSQL at router@127.0.0.1:{port}/alerts" in done.stderr
    assert "Not-In-Any-Log-8" not in done.stdout + done.stderr
    assert "Booting worker" not in done.stdout + done.stderr  # gunicorn never started


def test_sigkill_mid_burst_then_restart_exactly_once_on_postgres(
    tmp_path: Path,
    pg_server: PostgresServer,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """test_durability's SIGKILL-mid-burst test, its router on PostgreSQL."""
    monkeypatch.setattr(
        durability,
        "router",
        partial(
            router,
            storage_url=pg_server.url(pg_server.create_database()),
            password=pg_server.password,
        ),
    )
    durability.test_sigkill_mid_burst_then_restart_notifies_every_alert_exactly_once(
        tmp_path, receiver
    )
    assert not list(tmp_path.glob("*.db"))  # no SQLite file: it really ran on PostgreSQL
