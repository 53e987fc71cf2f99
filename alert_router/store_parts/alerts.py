"""Stored alerts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alert_router.sql import Insert
from alert_router.store_parts.base import StoreBase

ALERTS_SCHEMA = """\
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    starts_at REAL NOT NULL, ends_at REAL NOT NULL, generator_url TEXT NOT NULL,
    updated_at REAL NOT NULL, state TEXT NOT NULL, server TEXT NOT NULL, alertname TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, ends_at);
CREATE INDEX IF NOT EXISTS alerts_name ON alerts (alertname);
"""


@dataclass
class AlertRow:
    """One stored alert (times in unix seconds; ends_at already includes resolve_timeout)."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float
    generator_url: str
    updated_at: float
    state: str  # what was last recorded: firing | resolved

    def firing(self, now: float) -> bool:
        """Whether the alert fires at `now`."""
        return self.ends_at > now


_ALERT_COLUMNS = (
    "fingerprint, labels, annotations, starts_at, ends_at, generator_url, updated_at, state"
)
# The inserts, described once for every dialect (alert_router.sql).
PUT_ALERTS = Insert(
    "alerts",
    (
        "fingerprint",
        "labels",
        "annotations",
        "starts_at",
        "ends_at",
        "generator_url",
        "updated_at",
        "state",
        "server",
        "alertname",
    ),
    conflict_key=("fingerprint",),
)


# Prometheus re-sends every firing alert each evaluation, mostly with the annotations it
# sent before: each distinct annotation set is encoded once. A cache, not state, bounded in
# entries and in entry size (an entry keeps its strings alive), so at most about 100 MB.
_ANNOTATIONS_JSON_CACHE = 20_000
_ANNOTATIONS_JSON_CACHED_CHARS = 1024
_annotations_json: dict[tuple[tuple[str, str], ...], str] = {}


def annotations_json(annotations: Mapping[str, str]) -> str:
    """json.dumps(annotations), from the cache when this set was encoded before."""
    key = tuple(annotations.items())
    try:
        encoded = _annotations_json.get(key)
    except TypeError:  # a value that is not a string (not from ingest): not cached
        return json.dumps(annotations)
    if encoded is None:
        encoded = json.dumps(annotations)
        if len(encoded) <= _ANNOTATIONS_JSON_CACHED_CHARS:
            if len(_annotations_json) >= _ANNOTATIONS_JSON_CACHE:
                _annotations_json.clear()
            _annotations_json[key] = encoded
    return encoded


def _alert(row: tuple[Any, ...]) -> AlertRow:
    return AlertRow(
        row[0], json.loads(row[1]), json.loads(row[2]), row[3], row[4], row[5], row[6], row[7]
    )


def _readable(rows: Iterable[tuple[Any, ...]]) -> list[AlertRow]:
    """The rows that decode; one that does not (written by hand, or by a bug) is skipped
    here and reported where its group flushes, so no read fails because of it."""
    out = []
    for row in rows:
        try:
            out.append(_alert(row))
        except ValueError:
            continue
    return out


def _lenient(row: tuple[Any, ...]) -> AlertRow:
    """A row with undecodable labels or annotations read as empty ones."""
    try:
        return _alert(row)
    except ValueError:
        return AlertRow(row[0], {}, {}, row[3], row[4], row[5], row[6], row[7])


class AlertsMixin(StoreBase):
    """Stored alerts (the `alerts` table)."""

    def get_alerts(self, fingerprints: Iterable[str]) -> dict[str, AlertRow]:
        """Stored alerts by fingerprint."""
        fps = list(fingerprints)
        out: dict[str, AlertRow] = {}
        for start in range(0, len(fps), 500):
            chunk = fps[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for alert in _readable(
                self.conn().execute(
                    f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE fingerprint IN ({marks})", chunk
                )
            ):
                out[alert.fingerprint] = alert
        return out

    def alert_times(self, fingerprints: Iterable[str]) -> dict[str, tuple[float, float, str]]:
        """(starts_at, ends_at, state) of stored alerts: all a merge needs, no JSON decoding."""
        fps = list(fingerprints)
        out: dict[str, tuple[float, float, str]] = {}
        for start in range(0, len(fps), 500):
            chunk = fps[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for fp, starts, ends, state in self.conn().execute(
                "SELECT fingerprint, starts_at, ends_at, state FROM alerts "
                f"WHERE fingerprint IN ({marks})",
                chunk,
            ):
                out[fp] = (starts, ends, state)
        return out

    def update_alerts(self, alerts: Iterable[AlertRow]) -> None:
        """Update stored alerts whose labels are unchanged (same fingerprint)."""
        self.conn().executemany(
            "UPDATE alerts SET annotations = ?, starts_at = ?, ends_at = ?, generator_url = ?, "
            "updated_at = ?, state = ? WHERE fingerprint = ?",
            [
                (
                    annotations_json(a.annotations),
                    a.starts_at,
                    a.ends_at,
                    a.generator_url,
                    a.updated_at,
                    a.state,
                    a.fingerprint,
                )
                for a in alerts
            ],
        )

    def upsert_alerts(
        self, alerts: Iterable[AlertRow], labels_json: Mapping[str, str] | None = None
    ) -> None:
        """Insert or replace alerts; `labels_json`: fingerprint -> json.dumps(labels) where
        the caller already has it."""
        encoded = labels_json or {}
        self.dialect.insert_many(
            self.conn(),
            PUT_ALERTS,
            [
                (
                    a.fingerprint,
                    encoded.get(a.fingerprint) or json.dumps(a.labels),
                    annotations_json(a.annotations),
                    a.starts_at,
                    a.ends_at,
                    a.generator_url,
                    a.updated_at,
                    a.state,
                    a.labels.get("server", ""),
                    a.labels.get("alertname", ""),
                )
                for a in alerts
            ],
        )

    def all_alerts(self) -> list[AlertRow]:
        return _readable(
            self.conn().execute(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY starts_at")
        )

    def firing_page(self, now: float, limit: int, offset: int) -> list[AlertRow]:
        """Firing alerts, oldest first, one page of them (an unfiltered read decodes no more)."""
        return _readable(
            self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE ends_at > ? "
                "ORDER BY starts_at, fingerprint LIMIT ? OFFSET ?",
                (now, limit, offset),
            )
        )

    def alerts_named(self, alertname: str) -> list[AlertRow]:
        """The alerts with this alertname (indexed: an API filter need not read them all)."""
        return _readable(
            self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alertname = ? ORDER BY starts_at",
                (alertname,),
            )
        )

    def firing_labels(
        self, now: float, alertnames: set[str] | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """(fingerprint, labels) of the alerts firing at `now`, optionally only these names."""
        if alertnames is None:
            rows = self.conn().execute(
                "SELECT fingerprint, labels FROM alerts WHERE ends_at > ?", (now,)
            )
        else:
            names = sorted(alertnames)
            rows = self.conn().execute(
                "SELECT fingerprint, labels FROM alerts WHERE ends_at > ? AND alertname IN "
                f"({','.join('?' * len(names))})",
                (now, *names),
            )
        out = []
        for fp, labels in rows:
            try:
                out.append((fp, json.loads(labels)))
            except ValueError:  # an unreadable row is reported where its group flushes
                continue
        return out

    def newly_resolved(self, now: float) -> list[AlertRow]:
        """Alerts recorded as firing whose end time has passed (an undecodable one still
        resolves, with empty labels)."""
        return [
            _lenient(r)
            for r in self.conn().execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state = 'firing' AND ends_at <= ?",
                (now,),
            )
        ]

    def set_alert_state(self, fingerprints: Iterable[str], state: str) -> None:
        self.conn().executemany(
            "UPDATE alerts SET state = ? WHERE fingerprint = ?",
            [(state, fp) for fp in fingerprints],
        )

    def gc_alerts(self, resolved_before: float) -> int:
        """Forget resolved alerts no group still holds."""
        cur = self.conn().execute(
            "DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ? AND fingerprint NOT IN "
            "(SELECT fingerprint FROM group_alerts)",
            (resolved_before,),
        )
        return int(cur.rowcount)

    def count_alerts(self, now: float) -> int:
        return int(
            self.conn()
            .execute("SELECT count(*) FROM alerts WHERE ends_at > ?", (now,))
            .fetchone()[0]
        )
