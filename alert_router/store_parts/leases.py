"""Leadership between processes sharing one database."""

from __future__ import annotations

from collections.abc import Callable

from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

LEASES_SCHEMA = """\
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
"""
PUT_LEASE = Insert("leases", ("name", "holder", "until"), conflict_key=("name",))


class LeasesMixin(StoreBase):
    """Leadership between processes sharing one database."""

    def lease_holder(self, name: str) -> str | None:
        """Who holds (or last held) the named lease."""
        row = self.conn().execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def holder_gone(self, holder: str, holder_dead: Callable[[str], bool]) -> bool:
        """Whether a lease holder is known to be dead (not merely late)."""
        return holder_dead(holder)

    def try_lease(
        self,
        name: str,
        holder: str,
        now: float,
        ttl: float,
        holder_dead: Callable[[str], bool] = lambda _: False,
    ) -> bool:
        """Take or renew the named lease; False while another live holder's lease runs."""
        with self.tx() as conn:
            row = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now and not holder_dead(row[0]):
                return False
            conn.execute(PUT_LEASE.text(), (name, holder, now + ttl))
        return True
