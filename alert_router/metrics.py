"""The router's own metrics, on a registry per app (nothing module-global).

Under gunicorn each worker is a process with its own counters; with
PROMETHEUS_MULTIPROC_DIR set (wsgi.py sets it) every worker writes its values to files
there and /metrics sums them (prometheus_client's multiprocess mode), so every scrape sees
the whole router whichever worker answers.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from alert_router.store import Store
from stacksense_common.http_metrics import HttpMetrics
from stacksense_common.ops import ReloadGauges

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(base: Path, master_pid: int, alive: Callable[[int], bool]) -> Path:
    """Point prometheus_client at a fresh directory for the server process `master_pid`.

    Each gunicorn master gets its own subdirectory of `base`, so a restarted router starts
    from zero; those of masters no longer running are removed. Call before any metric is
    created in this process.
    """
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in base.glob("master-*"):
        pid = old.name.removeprefix("master-")
        if pid.isdigit() and int(pid) != master_pid and not alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"master-{master_pid}"
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus_client picks its value class when first imported, maybe before this ran.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


class StoreCollector(Collector):
    """Outbox depth, inbox backlog and active alerts, read from the store at scrape time."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        outbox = GaugeMetricFamily(
            "stacksense_router_outbox_notifications",
            "Notifications in the outbox by status.",
            labels=["status"],
        )
        counts = store.outbox_counts()
        for status in ("pending", "sending", "sent", "failed"):
            outbox.add_metric([status], counts.get(status, 0))
        yield outbox
        yield GaugeMetricFamily(
            "stacksense_router_outbox_depth",
            "Notifications not yet delivered (pending or sending).",
            value=counts.get("pending", 0) + counts.get("sending", 0),
        )
        yield GaugeMetricFamily(
            "stacksense_router_inbox_requests",
            "Accepted requests not yet merged by the dispatcher.",
            value=store.inbox.depth(),
        )
        yield GaugeMetricFamily(
            "stacksense_router_alerts_firing",
            "Alerts firing now.",
            value=store.count_alerts(time.time()),
        )


class RouterMetrics:
    """Counters, gauges and histograms the router updates as it works."""

    def __init__(self) -> None:
        # The metrics live on `own`; /metrics exposes `registry`, which in multiprocess mode
        # reads every worker's files instead (own values are in those files too).
        self.own = CollectorRegistry(auto_describe=True)
        multiproc = os.environ.get(MULTIPROC_ENV)
        if multiproc and os.path.isdir(multiproc):
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, multiproc)  # type: ignore[no-untyped-call]
        else:
            self.registry = self.own
        r = self.own
        # labels() validates and hashes on every call: the hot path keeps its children.
        self._received: dict[str, Any] = {}
        self.received = Counter(
            "stacksense_router_alerts_received_total",
            "Valid alerts accepted, by ingest source.",
            ["source"],
            registry=r,
        )
        self.invalid = Counter(
            "stacksense_router_alerts_invalid_total",
            "Alerts rejected as invalid, by ingest source.",
            ["source"],
            registry=r,
        )
        self.deduped = Counter(
            "stacksense_router_notifications_deduped_total",
            "Group flushes that sent nothing because nothing changed.",
            ["receiver"],
            registry=r,
        )
        self.muted = Counter(
            "stacksense_router_alerts_muted_total",
            "Alerts left out of a notification, by silenced or inhibited.",
            ["reason"],
            registry=r,
        )
        self.sent = Counter(
            "stacksense_router_notifications_sent_total",
            "Notifications delivered.",
            ["receiver", "integration"],
            registry=r,
        )
        self.failed = Counter(
            "stacksense_router_notifications_failed_total",
            "Failed delivery attempts, by reason.",
            ["receiver", "integration", "reason"],
            registry=r,
        )
        self.given_up = Counter(
            "stacksense_router_notifications_given_up_total",
            "Notifications dropped after a permanent error or too long.",
            ["receiver", "integration", "reason"],
            registry=r,
        )
        self.set_aside = Counter(
            "stacksense_router_alerts_set_aside_total",
            "Stored requests or groups the dispatcher could not process "
            "and set aside (see the log), by stage.",
            ["stage"],
            registry=r,
        )
        # The same names in every service (stacksense_common): requests by route template
        # and code, and the reload outcome (every worker loads or reloads the config: the
        # latest outcome is the router's).
        self.http = HttpMetrics(r)
        reload = ReloadGauges("router", r)
        self.reload_ok, self.reload_time = reload.ok, reload.timestamp

    def received_from(self, source: str) -> Any:
        """The received counter of one ingest source (its child looked up once)."""
        child = self._received.get(source)
        if child is None:
            child = self._received[source] = self.received.labels(source)
        return child

    def watch_store(self, store: Callable[[], Store]) -> None:
        """Expose the store-backed gauges."""
        self.registry.register(StoreCollector(store))


class CountRequests:
    """WSGI middleware: counts every answered request by handler and status code, and times it.

    The handler is the Flask route (app.py puts it in the environ) or, for requests the
    fast ingest path answers before Flask, their path; anything else is "unmatched", so
    the label set stays bounded whatever paths clients ask for.
    """

    HANDLER_KEY = "stacksense.handler"

    def __init__(self, app: Any, metrics: RouterMetrics, fast_paths: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.fast_paths = frozenset(fast_paths)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        status: list[str] = []
        started = time.perf_counter()

        def record(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, record)
        finally:
            path = environ.get("PATH_INFO", "")
            handler = environ.get(self.HANDLER_KEY) or (
                path if path in self.fast_paths else "unmatched"
            )
            code = status[-1].split(" ", 1)[0] if status else "500"
            self.metrics.http.observe(handler, code, time.perf_counter() - started)
