"""The router's own metrics, on a registry per app (nothing module-global)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alert_router.store import Store


class StoreCollector(Collector):
    """Outbox depth, inbox backlog and active alerts, read from the store at scrape time."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        outbox = GaugeMetricFamily("stacksense_router_outbox_notifications",
                                   "Notifications in the outbox by status.", labels=["status"])
        counts = store.outbox_counts()
        for status in ("pending", "sending", "sent", "failed"):
            outbox.add_metric([status], counts.get(status, 0))
        yield outbox
        yield GaugeMetricFamily("stacksense_router_outbox_depth",
                                "Notifications not yet delivered (pending or sending).",
                                value=counts.get("pending", 0) + counts.get("sending", 0))
        yield GaugeMetricFamily("stacksense_router_inbox_requests",
                                "Accepted requests not yet merged by the dispatcher.",
                                value=store.inbox_depth())
        yield GaugeMetricFamily("stacksense_router_alerts_firing",
                                "Alerts firing now.", value=store.count_alerts(time.time()))


class RouterMetrics:
    """Counters, gauges and histograms the router updates as it works."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("stacksense_router_alerts_received_total",
                                "Valid alerts accepted, by ingest source.", ["source"], registry=r)
        self.invalid = Counter("stacksense_router_alerts_invalid_total",
                               "Alerts rejected as invalid, by ingest source.", ["source"],
                               registry=r)
        self.deduped = Counter("stacksense_router_notifications_deduped_total",
                               "Group flushes that sent nothing because nothing changed.",
                               ["receiver"], registry=r)
        self.muted = Counter("stacksense_router_alerts_muted_total",
                             "Alerts left out of a notification, by silenced or inhibited.",
                             ["reason"], registry=r)
        self.sent = Counter("stacksense_router_notifications_sent_total",
                            "Notifications delivered.", ["receiver", "integration"], registry=r)
        self.failed = Counter("stacksense_router_notifications_failed_total",
                              "Failed delivery attempts, by reason.",
                              ["receiver", "integration", "reason"], registry=r)
        self.given_up = Counter("stacksense_router_notifications_given_up_total",
                                "Notifications dropped after a permanent error or too long.",
                                ["receiver", "integration", "reason"], registry=r)
        self.set_aside = Counter("stacksense_router_alerts_set_aside_total",
                                 "Stored requests or groups the dispatcher could not process "
                                 "and set aside (see the log), by stage.", ["stage"],
                                 registry=r)
        self.request_seconds = Histogram(
            "stacksense_router_http_request_duration_seconds", "HTTP request latency.",
            ["handler", "method"], registry=r,
            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.reload_ok = Gauge("stacksense_router_config_last_reload_successful",
                               "Whether the last config reload worked (1) or not (0).",
                               registry=r)
        self.reload_time = Gauge("stacksense_router_config_last_reload_success_timestamp_seconds",
                                 "When the config was last loaded successfully.", registry=r)

    def watch_store(self, store: Callable[[], Store]) -> None:
        """Expose the store-backed gauges."""
        self.registry.register(StoreCollector(store))
