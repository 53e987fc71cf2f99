"""Browsers keep connections alive: idle ones must not take the router's threads.

Under gunicorn 27, `conn.wait_for_data()` answers True at once while the connection's
`data_ready` flag is still set from its previous request, so `KeepAliveWorker.handle`
(alert_router/cli.py) clears it before lingering; otherwise each idle keep-alive
connection holds a thread and, with 2 workers x 4 threads, the 9th idle browser
connection hangs every request, the alert API's included.
"""

from __future__ import annotations

import requests

from alert_router.console.users import Users
from alert_router.store import Store
from tests.console.fake_peers import fake_peers
from tests.console.session import PASSWORD, TOKEN, console_config
from tests.peers.router import router


def test_idle_keepalive_connections_do_not_starve_the_router(tmp_path):
    with fake_peers() as peers:
        config = console_config(tmp_path, peers.url)
        store = Store(str(tmp_path / "router.db"))
        Users(store).add("vera", "viewer", PASSWORD)
        store.close()
        with router(tmp_path, config, token=TOKEN, workers=2, threads=4) as proc:
            sessions = []
            try:
                for _ in range(12):  # more idle connections than the 8 threads
                    session = requests.Session()
                    session.get(f"{proc.url}/console/login", timeout=3).raise_for_status()
                    sessions.append(session)
                resp = requests.get(f"{proc.url}/-/ready", timeout=3)
                assert resp.status_code == 200
            except requests.Timeout as exc:
                raise AssertionError(
                    f"router hung with {len(sessions)} idle keep-alive connections"
                ) from exc
            finally:
                for session in sessions:
                    session.close()
