"""HTTP request metrics under the same names in every service.

    stacksense_http_requests_total{handler, code}          requests answered
    stacksense_http_request_duration_seconds{handler}      time to answer (histogram)

Errors are the requests whose `code` is 4xx or 5xx (as Prometheus' own
`prometheus_http_requests_total` counts them): no separate error counter to keep in step.

`handler` is the route template that matched (`/api/v1/servers/<name>`, never the raw
path) or `unmatched` for a request no route took (unknown paths, malformed requests,
connections refused at the limit), so the label set stays bounded whatever clients send.

Works under prometheus_client's multiprocess mode unchanged: counters and histograms sum
over the processes.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

REQUESTS = "stacksense_http_requests_total"
DURATION = "stacksense_http_request_duration_seconds"
UNMATCHED = "unmatched"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class HttpMetrics:
    """The two families on `registry`, and a cheap `observe` for the request path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            REQUESTS,
            "HTTP requests answered, by route template and status code.",
            ["handler", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            DURATION,
            "Time to answer an HTTP request, by route template.",
            ["handler"],
            buckets=BUCKETS,
            registry=registry,
        )
        # Label lookups cost more than the increments: the bound methods are kept per
        # label set (a bounded set, see the module doc).
        self._inc: dict[tuple[str, str], Callable[[], None]] = {}
        self._observe: dict[str, Callable[[float], None]] = {}

    def observe(self, handler: str, code: int | str, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (handler, str(code))
        inc = self._inc.get(key)
        if inc is None:
            inc = self._inc.setdefault(key, self.requests.labels(*key).inc)
        inc()
        observe = self._observe.get(handler)
        if observe is None:
            observe = self._observe.setdefault(handler, self.duration.labels(handler).observe)
        observe(seconds)
