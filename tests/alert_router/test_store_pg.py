"""The PostgreSQL store: its config, its dialect, and what differs from SQLite (real server)."""

from __future__ import annotations

import socket
import threading

import psycopg
import pytest

from alert_router.app import create_app
from alert_router.background import holder_dead
from alert_router.config import parse_config
from alert_router.errors import ConfigError
from alert_router.store import ADD_GROUP_ALERTS, ADD_INCIDENTS, PUT_LEASE, HistoryEvent
from alert_router.store_pg import DIALECT, InboxMergedElsewhere, PgStore, StoreConnectError
from stacksense_common.secret import Secret
from tests.alert_router.harness import PG_PASSWORD_ENV, base_config
from tests.peers import postgres as peer
from tests.peers.postgres import PostgresServer, postgres
from tests.peers.util import free_port, port_open, wait_for

SECRET = "hunter2-Pa55"


@pytest.fixture
def store(pg_storage: dict[str, str], pg_server: PostgresServer):
    made = PgStore(pg_storage["url"], password=pg_server.password)
    yield made
    made.close()


def test_storage_url_config(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_DB_PASSWORD", SECRET)
    cfg = parse_config(
        base_config(
            tmp_path,
            storage={
                "url": "postgresql://router@db.example:5433/alerts",
                "password_env": "ROUTER_DB_PASSWORD",
            },
        )
    )
    assert (cfg.storage_url, cfg.storage_password) == (
        "postgresql://router@db.example:5433/alerts",
        Secret(SECRET),
    )
    assert SECRET not in repr(cfg)
    (tmp_path / "pw").write_text(SECRET + "\n")
    cfg = parse_config(
        base_config(
            tmp_path,
            storage={"url": "postgres://router@db/alerts?sslmode=require", "password_file": "pw"},
        ),
        base_dir=tmp_path,
    )
    assert cfg.storage_password == Secret(SECRET)
    assert parse_config(base_config(tmp_path)).storage_url == ""  # SQLite stays the default


@pytest.mark.parametrize(
    ("storage", "path", "message"),
    [
        (
            {"url": f"postgresql://router:{SECRET}@db/alerts"},
            "storage.url",
            "must not contain a pass",
        ),
        (
            {"url": f"postgresql://router@db/alerts?password={SECRET}"},
            "storage.url",
            "must not contain a password",
        ),
        ({"url": "mysql://router@db/alerts"}, "storage.url", "scheme must be postgresql://"),
        ({"url": "postgresql:///alerts"}, "storage.url", "a host is required"),
        ({"url": "postgresql://router@db"}, "storage.url", "a database name is required"),
        ({"url": "postgresql://router@db:port/alerts"}, "storage.url", "not a valid URL"),
        ({"url": 5432}, "storage.url", "must be a string"),
        ({"url": "postgresql://db/a", "path": "x.db"}, "storage.path", "SQLite only"),
        ({"url": "postgresql://db/a", "synchronous": "full"}, "storage.synchronous", "SQLite only"),
        ({"url": "postgresql://db/a", "passwd": "x"}, "storage.passwd", "unknown key"),
        ({"path": "x.db", "password_env": "X"}, "storage.password_env", "only with storage.url"),
        (
            {"url": "postgresql://db/a", "password_env": "NO_SUCH_VARIABLE_X"},
            "storage.password_env",
            "NO_SUCH_VARIABLE_X is not set",
        ),
        (
            {"url": "postgresql://db/a", "password_file": "/nonexistent/pw"},
            "storage.password_file",
            "cannot read /nonexistent/pw",
        ),
        (
            {"url": "postgresql://db/a", "password_file": "/x", "password_env": "X"},
            "storage.password_file",
            "not both",
        ),
    ],
)
def test_invalid_storage_names_the_key_and_never_echoes_the_password(
    tmp_path, storage, path, message
):
    with pytest.raises(ConfigError) as info:
        parse_config(base_config(tmp_path, storage=storage))
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert SECRET not in str(info.value)


def test_the_dialect_spells_what_postgresql_spells_its_own_way():
    assert (
        DIALECT.sql("SELECT a FROM t WHERE b = ? AND c LIKE 'x%'")
        == "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%'"
    )
    # Upserts are written once, in the syntax both databases take.
    assert PUT_LEASE.text() == (
        "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
        "until = excluded.until"
    )
    assert ADD_GROUP_ALERTS.text() == (
        "INSERT INTO group_alerts (group_key, fingerprint) VALUES (?, ?) ON CONFLICT DO NOTHING"
    )
    statement, kinds = DIALECT.unnest(ADD_INCIDENTS)
    assert statement == (
        "INSERT INTO incidents (key, state, title, server, severity, opened_at, updated_at) "
        "SELECT u.key, 'open', u.title, u.server, u.severity, u.opened_at, u.updated_at "
        "FROM unnest(%b::TEXT[], %b::TEXT[], %b::TEXT[], %b::TEXT[], %b::DOUBLE PRECISION[], "
        "%b::DOUBLE PRECISION[]) AS u(key, title, server, severity, opened_at, updated_at) "
        "WHERE true"
    )
    assert kinds == ["TEXT"] * 4 + ["DOUBLE PRECISION"] * 2


def test_unreachable_database_names_the_host_not_the_password(tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv(PG_PASSWORD_ENV, SECRET)
    config = base_config(
        tmp_path,
        storage={
            "url": f"postgresql://router@127.0.0.1:{port}/alerts",
            "password_env": PG_PASSWORD_ENV,
        },
    )
    with pytest.raises(StoreConnectError) as info:
        create_app(config, start_background=False)
    assert f"cannot connect to PostgreSQL at router@127.0.0.1:{port}/alerts" in str(info.value)
    assert SECRET not in str(info.value)


def test_wrong_password_is_named_but_not_shown(pg_server, pg_storage):
    with pytest.raises(StoreConnectError) as info:
        PgStore(pg_storage["url"], password=SECRET)
    assert "password authentication failed" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_live_replica_on_another_host_is_never_declared_dead(pg_server, pg_storage, store):
    # A replica on another host whose hostname is ours and whose pid does not exist here:
    # the runner's hostname/pid check would call it dead.
    other = PgStore(pg_storage["url"], password=pg_server.password)
    remote = f"{socket.gethostname()}/4194303/remote"
    assert holder_dead(remote)
    assert other.try_lease("dispatcher", remote, 100.0, 15.0, holder_dead)
    assert not store.try_lease("dispatcher", "here/1/local", 101.0, 15.0, holder_dead)
    # Its database session ends (a crash, SIGKILL): taken over before the lease expires
    # (as soon as the server's backend has exited and dropped the session's locks).
    other.close()
    wait_for(
        lambda: store.try_lease("dispatcher", "here/1/local", 102.0, 15.0, holder_dead),
        timeout=10,
        what="the lease taken over from the ended session",
    )


def test_a_request_committed_late_is_not_skipped(pg_server, pg_storage, store):
    # Identity values are taken at INSERT and committed later: a request whose commit lands
    # after the dispatcher merged higher ids must still be merged.
    slow = pg_server.connect(pg_storage["url"].rsplit("/", 1)[1])
    slow.autocommit = False
    slow.execute(
        "INSERT INTO inbox (source, received_at, body, form) "
        "VALUES ('api', 1, '[\"slow\"]', 'normalised')"
    )
    store.inbox.add("api", '["fast"]', 2.0)
    name, rows = store.inbox.read(100) or ("", [])
    assert [r[3] for r in rows] == ['["fast"]']
    with store.tx():
        store.inbox.mark_merged(name, rows[-1][0])
    store.inbox.trim(name, rows[-1][0])
    slow.commit()
    slow.close()
    assert store.inbox.depth() == 1
    assert [r[3] for r in (store.inbox.read(100) or ("", []))[1]] == ['["slow"]']


def test_replicas_never_claim_one_notification_twice(pg_server, pg_storage, store):
    with store.tx():
        for i in range(300):
            store.enqueue(f"g{i}", "r", 0, "webhook", "{}", 10.0)
    stores = [store, PgStore(pg_storage["url"], password=pg_server.password)]
    claimed: list[list[int]] = [[], []]
    # Both replicas claim a first batch before either goes on, so on a busy machine one
    # cannot drain the outbox before the other has started.
    first_batches = threading.Barrier(2, timeout=30)

    def claim(index: int) -> None:
        first = True
        while rows := stores[index].claim_due(20.0, 7, 60.0):
            claimed[index] += [r.id for r in rows]
            if first:
                first_batches.wait()
                first = False

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stores[1].close()
    everything = claimed[0] + claimed[1]
    assert sorted(everything) == sorted(set(everything)) and len(everything) == 300
    assert claimed[0] and claimed[1]  # both really ran


def test_many_row_inserts_keep_every_row_and_type(store):
    # executemany of an INSERT goes as one unnest statement: ints among floats, an int
    # into a text column, a literal column value and duplicates ignored by OR IGNORE.
    store.add_history(
        [
            HistoryEvent(1, "alert", "fp1", "s1", "firing"),
            HistoryEvent(2.5, "notification", 7, "s1", "sent"),
        ]
    )  # type: ignore[arg-type]
    assert [(e.ts, e.subject) for e in store.query_history(by_id=True)] == [
        (1.0, "fp1"),
        (2.5, "7"),
    ]
    store.create_incidents([("k1", "t1", "s1", "page", 10), ("k2", "t2", "s2", "info", 11.5)])
    assert [(i["key"], i["state"], i["opened_at"]) for i in store.list_incidents()] == [
        ("k2", "open", 11.5),
        ("k1", "open", 10.0),
    ]
    first = store.list_incidents()[1]["id"]
    store.link_incident_alerts([(first, "a"), (first, "b")])
    store.link_incident_alerts([(first, "b"), (first, "c")])
    assert sorted(store.get_incident(first)["alerts"]) == ["a", "b", "c"]
    store.add_history([])  # nothing to send: no statement
    assert len(store.query_history()) == 2


def test_a_replica_stuck_in_a_transaction_loses_it_and_reconnects(pg_server, pg_storage, store):
    stuck = PgStore(pg_storage["url"], password=pg_server.password, idle_tx_timeout=0.5)
    held = stuck.tx()
    held.__enter__()  # holds the write lock and then idles, as if cut off from the network
    try:
        # The server ends the idle transaction, so the others' writes go on.
        wait_for(
            lambda: store.try_lease("dispatcher", "here/1/a", 100.0, 15.0),
            timeout=10,
            what="the write lock released by the server",
        )
        with pytest.raises(psycopg.Error):
            held.__exit__(None, None, None)
        # The broken connection is replaced on next use.
        assert stuck.try_lease("x", "here/2/b", 100.0, 15.0)
    finally:
        stuck.close()


def test_the_postgres_peer_listens_on_loopback_and_leaves_nothing_behind():
    with postgres() as server, server.connect() as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        datadir, port = server.datadir, server.port
        assert port_open("127.0.0.1", port)
    assert not datadir.exists() and not port_open("127.0.0.1", port)


def test_missing_postgres_binaries_fail_with_how_to_install(monkeypatch):
    monkeypatch.setattr(peer.shutil, "which", lambda _name: None)
    monkeypatch.setattr(peer.glob, "glob", lambda _pattern: [])
    with pytest.raises(RuntimeError, match=r"make setup.*apt-get install -y postgresql"):
        peer.pg_bindir()


def test_unreachable_message_keeps_libpqs_reason(tmp_path):
    port = free_port()
    with pytest.raises(
        StoreConnectError,
        match=f"at router@127.0.0.1:{port}/alerts: connection "
        "failed: .* failed: Connection refused Is the server running",
    ):
        PgStore(f"postgresql://router@127.0.0.1:{port}/alerts", password=SECRET)


def test_two_dispatchers_never_merge_one_request_twice(pg_server, pg_storage, store):
    # A leader that lost its lease in the middle of a step may still try to merge what it
    # read: its transaction is rolled back instead of merging the requests again.
    late = PgStore(pg_storage["url"], password=pg_server.password)
    try:
        store.inbox.add("api", '["a"]', 1.0)
        first, second = store.inbox.read(10), late.inbox.read(10)
        assert first is not None and second is not None and first[1] == second[1]
        with store.tx():
            store.add_history([HistoryEvent(1.0, "alert", "fp", "s", "firing")])
            store.inbox.mark_merged(first[0], first[1][-1][0])
        with pytest.raises(InboxMergedElsewhere), late.tx():
            late.add_history([HistoryEvent(1.0, "alert", "fp", "s", "firing")])
            late.inbox.mark_merged(second[0], second[1][-1][0])
        assert len(store.query_history()) == 1 and store.inbox.depth() == 0
    finally:
        late.close()
