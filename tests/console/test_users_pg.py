"""Console accounts on the router's PostgreSQL store (several replicas share one database)."""

from __future__ import annotations

import time

import pytest

from alert_router.console import users as users_mod
from alert_router.store_pg import PgStore
from tests.peers.postgres import INSTALL_HINT, pg_bindir, postgres


def test_users_and_login_failures_on_postgresql(monkeypatch):
    try:
        pg_bindir()
    except RuntimeError:
        pytest.fail(INSTALL_HINT)
    with postgres() as server:
        db = server.create_database()
        first = PgStore(server.url(db), password=server.password)
        second = PgStore(server.url(db), password=server.password)  # another replica
        try:
            a, b = users_mod.Users(first), users_mod.Users(second)  # schema created twice
            a.add("otto", "operator", "a long enough password")
            assert b.get("otto").role == "operator"
            assert b.authenticate("otto", "a long enough password", "10.0.0.1", time.time())
            for _ in range(users_mod.MAX_FAILS_PER_USER):
                assert a.authenticate("otto", "wrong password!!", "10.0.0.1", time.time()) is None
            assert b.throttled("otto", "10.0.0.9", time.time())  # seen by the other replica
            assert b.set_role("otto", "admin") and a.get("otto").role == "admin"
            assert a.remove("otto") and b.get("otto") is None
        finally:
            first.close()
            second.close()
