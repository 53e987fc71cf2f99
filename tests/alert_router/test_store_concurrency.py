"""Opening a store file while another connection writes to it never fails (was a 500 under load)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from alert_router.store import Store


def test_connect_while_a_fresh_file_is_being_written(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "router.db"))
    fresh = str(tmp_path / "inbox.db")
    writer = sqlite3.connect(fresh, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE t (x)")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        conn = store._connect(fresh)  # must wait for the writer, not raise "locked"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        writer.close()
        store.close()
