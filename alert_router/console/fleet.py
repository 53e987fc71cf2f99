"""The fleet view's rows: the rule engine's status joined with Prometheus' figures.

Filtering and sorting happen here, on plain data, so the view and the benchmark share
them and the template only prints.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from alert_router.console import sources
from alert_router.console.settings import ConsoleConfig

STATUSES = ("offline", "warning", "unknown", "pending", "suspended", "online")
# Critical first: the order a person on call reads the fleet in.
STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}
COLOR_RANK = {"red": 0, "orange": 1, "yellow": 1, "green": 2}
SORTS = ("status", "name", "health", "cpu", "memory", "disk", "load", "heartbeat")


@dataclass
class ServerRow:
    name: str
    status: str
    reason: str = ""
    reason_text: str = ""
    since: float | None = None
    health_score: float | None = None
    health_color: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    load: float | None = None
    uptime: float | None = None
    heartbeat: float | None = None

    def text(self) -> str:
        """What the text filter searches: name, status, reason and labels."""
        parts = [
            self.name,
            self.status,
            self.reason,
            self.reason_text,
            *(f"{k}={v}" for k, v in self.labels.items()),
        ]
        return " ".join(parts).lower()


@dataclass
class Fleet:
    rows: list[ServerRow]
    counts: dict[str, int]
    errors: list[str]
    pipeline: dict[str, Any]
    total: int
    matched: int = 0  # rows matching the filters (the page shows at most PAGE_ROWS)
    page: int = 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.matched // PAGE_ROWS))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def build_rows(
    views: dict[str, dict[str, Any]],
    metrics: dict[str, dict[str, float]],
    labels: dict[str, dict[str, str]],
) -> list[ServerRow]:
    """One row per server the rule engine knows, tolerant of missing fields."""
    rows = []
    for name, view in views.items():
        raw_health = view.get("health")
        health: dict[str, Any] = raw_health if isinstance(raw_health, dict) else {}
        m = metrics.get(name, {})
        status = _str(view.get("status")) or "unknown"
        rows.append(
            ServerRow(
                name=name,
                status=status,
                reason=_str(view.get("reason")),
                reason_text=_str(view.get("reason_text")),
                since=_float(view.get("since")),
                health_score=_float(health.get("score")),
                health_color=_str(health.get("color")),
                labels=labels.get(name, {}),
                cpu=m.get("cpu"),
                memory=m.get("memory"),
                disk=m.get("disk"),
                load=m.get("load"),
                uptime=m.get("uptime"),
                heartbeat=m.get("heartbeat"),
            )
        )
    return rows


def _sort_key(sort: str) -> Any:
    def key(row: ServerRow) -> Any:
        if sort == "name":
            return (row.name,)
        if sort == "health":
            return (row.health_score if row.health_score is not None else 101, row.name)
        if sort in ("cpu", "memory", "disk", "load"):
            value = getattr(row, sort)
            return (-(value if value is not None else -1.0), row.name)
        if sort == "heartbeat":
            return (row.heartbeat if row.heartbeat is not None else 0.0, row.name)
        return (
            STATUS_RANK.get(row.status, len(STATUSES)),
            COLOR_RANK.get(row.health_color, 3),
            row.health_score if row.health_score is not None else 101,
            row.name,
        )

    return key


def parse_label_filter(text: str) -> tuple[str, str] | None:
    name, sep, value = text.partition("=")
    return (name.strip(), value.strip()) if sep and name.strip() else None


def select(
    rows: list[ServerRow],
    *,
    status: str = "",
    label: str = "",
    text: str = "",
    sort: str = "status",
) -> list[ServerRow]:
    """Rows matching the filters, in `sort` order (default: critical first)."""
    wanted = parse_label_filter(label)
    needle = text.strip().lower()
    out = [
        r
        for r in rows
        if (not status or r.status == status)
        and (wanted is None or r.labels.get(wanted[0]) == wanted[1])
        and (not needle or needle in r.text())
    ]
    out.sort(key=_sort_key(sort if sort in SORTS else "status"))
    return out


def count(rows: list[ServerRow]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def sd_labels(cfg: ConsoleConfig) -> tuple[dict[str, dict[str, str]], str]:
    """Each server's inventory labels, from the exporter's http_sd endpoint."""
    got = sources.get_json(f"{cfg.exporter_url}/sd", cfg.request_timeout)
    if got.error:
        return {}, got.error
    out: dict[str, dict[str, str]] = {}
    if isinstance(got.data, list):
        for group in got.data:
            labels = group.get("labels") if isinstance(group, dict) else None
            if isinstance(labels, dict) and isinstance(labels.get("server"), str):
                out[labels["server"]] = {
                    str(k): str(v)
                    for k, v in labels.items()
                    if k != "server" and not str(k).startswith("__")
                }
    return out, ""


PAGE_ROWS = 200  # rows per page: bounds the page (and every live poll) whatever the fleet
CACHE_SECONDS = 2.0  # one read of the peers serves every browser polling within this time
_cache: dict[ConsoleConfig, tuple[float, tuple[list[ServerRow], list[str], dict[str, Any]]]] = {}
_cache_lock = threading.Lock()
_refreshing: set[ConsoleConfig] = set()


def _read_peers(cfg: ConsoleConfig) -> tuple[list[ServerRow], list[str], dict[str, Any]]:
    """All rows, errors and pipeline state, the peers read in parallel (one round trip)."""
    with ThreadPoolExecutor(max_workers=len(sources.FLEET_QUERIES) + 2) as pool:
        rules = pool.submit(sources.rules_servers, cfg)
        sd = pool.submit(sd_labels, cfg)
        prom = {
            key: pool.submit(sources.prom_instant, cfg, expr)
            for key, expr in sources.FLEET_QUERIES.items()
        }
        got = rules.result()
        errors = [f"rule engine: {got.error}"] if got.error else []
        metrics: dict[str, dict[str, float]] = {}
        for key, future in prom.items():
            result = future.result()
            if result.error:
                message = f"Prometheus: {result.error}"
                if got.data and message not in errors:
                    errors.append(message)
                continue
            for server, value in result.data.items():
                metrics.setdefault(server, {})[key] = value
        labels, _sd_error = sd.result()  # labels are optional: the exporter may be elsewhere
    return build_rows(got.data or {}, metrics, labels), errors, got.extra.get("pipeline", {})


def read_peers_cached(cfg: ConsoleConfig) -> tuple[list[ServerRow], list[str], dict[str, Any]]:
    """_read_peers, shared by the requests of this process for CACHE_SECONDS.

    With many browsers polling, the peers are read once per interval instead of once per
    browser. When the answer is stale, one request reads the peers again while the others
    are served the previous answer (at most one read in flight per process), so a slow
    peer delays one request, not every poll.
    """
    with _cache_lock:
        hit = _cache.get(cfg)
        fresh = hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS
        if fresh or (hit is not None and cfg in _refreshing):
            assert hit is not None
            return hit[1]
        first = hit is None
        if not first:
            _refreshing.add(cfg)
    if first:
        # Nothing to serve yet: concurrent first requests each read (a rare, bounded case).
        value = _read_peers(cfg)
    else:
        try:
            value = _read_peers(cfg)
        finally:
            with _cache_lock:
                _refreshing.discard(cfg)
    with _cache_lock:
        if cfg not in _cache:
            _cache.clear()  # one config at a time: a reload must not keep old entries
        _cache[cfg] = (time.monotonic(), value)
    return value


def load_fleet(
    cfg: ConsoleConfig,
    *,
    status: str = "",
    label: str = "",
    text: str = "",
    sort: str = "status",
    page: int = 1,
) -> Fleet:
    """The filtered, sorted fleet; one page of rows (PAGE_ROWS), counts over all servers."""
    rows, errors, pipeline = read_peers_cached(cfg)
    selected = select(rows, status=status, label=label, text=text, sort=sort)
    start = (max(page, 1) - 1) * PAGE_ROWS
    return Fleet(
        selected[start : start + PAGE_ROWS],
        count(rows),
        errors,
        pipeline,
        len(rows),
        matched=len(selected),
        page=max(page, 1),
    )


def ago(t: float | None, now: float | None = None) -> str:
    """'42s ago', '3m ago', '5h ago', '2d ago'; '' for None."""
    if t is None:
        return ""
    delta = max(0.0, (now or time.time()) - t)
    return duration(delta) + " ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
