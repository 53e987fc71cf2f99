"""A small Prometheus HTTP API client: instant and range queries, nothing else.

Exceptions::

    PrometheusError                 anything that went wrong asking Prometheus
    ├── PrometheusUnavailable       no usable answer (connection, timeout, 5xx) after retries
    └── PrometheusQueryError        Prometheus answered {"status": "error"} (bad query, ...)

Every call goes through one `_request` helper, which retries connection
errors, timeouts, 429 and 5xx answers with exponential backoff, and always
judges the answer by Prometheus' JSON envelope rather than the status code.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from stacksense_common import backoff as shared_backoff

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


class PrometheusError(Exception):
    """Anything that went wrong asking Prometheus."""


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not be reached or kept failing (connection, timeout, 5xx)."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered with its error envelope; carries errorType and error."""

    def __init__(self, error_type: str, message: str, expr: str = "") -> None:
        super().__init__(f"{error_type}: {message}" + (f" (query: {expr})" if expr else ""))
        self.error_type = error_type
        self.message = message
        self.expr = expr


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector: labels and value at one time."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Series:
    """One element of a range result: labels and (timestamp, value) points in order."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def escape_label_value(value: str) -> str:
    """Escape a string for use inside a double-quoted PromQL label matcher."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(metric: str, **matchers: str) -> str:
    """Build `metric{label="value",...}` with every value escaped (equality matchers only)."""
    if not _METRIC_NAME.match(metric):
        raise ValueError(f"invalid metric name: {metric!r}")
    parts = []
    for name, value in matchers.items():
        if not _LABEL_NAME.match(name):
            raise ValueError(f"invalid label name: {name!r}")
        parts.append(f'{name}="{escape_label_value(value)}"')
    return metric + ("{" + ",".join(parts) + "}" if parts else "")


def _float(raw: str) -> float:
    # Prometheus encodes values as strings, including "NaN", "+Inf", "-Inf".
    return float(raw)


class PrometheusClient:
    """Query Prometheus' HTTP API; counts queries and errors for the engine's metrics."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        bearer_token: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._rand = rand
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.queries = 0  # requests that reached the point of being sent, retries excluded
        self.errors = 0  # calls that ended in a PrometheusError
        self._count_lock = threading.Lock()  # the engine queries from several threads

    def _request(self, path: str, params: Mapping[str, Any]) -> Any:
        """POST a form to `path`, retrying transient failures; return the envelope's `data`."""
        with self._count_lock:
            self.queries += 1
        url = self.base_url + path
        expr = str(params.get("query", ""))
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                # The shared backoff; no cap beyond the doubling: retries are at most 10.
                self._sleep(
                    shared_backoff.delay(
                        attempt,
                        initial=self.backoff,
                        maximum=self.backoff * 2**self.retries,
                        rand=self._rand,
                    )
                )
            try:
                # POST so that long fleet queries never hit URL length limits.
                resp = self.session.post(
                    url, data=dict(params), timeout=self.timeout, headers=self._headers
                )
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.debug("prometheus request to %s failed: %s", url, last)
                continue
            body = _json_or_none(resp)
            if isinstance(body, dict) and body.get("status") == "error":
                error_type = str(body.get("errorType", "unknown"))
                message = str(body.get("error", ""))
                # Overload (503 "unavailable") and timeouts are worth another try;
                # a bad query is not.
                if resp.status_code in _RETRYABLE_STATUS and error_type != "bad_data":
                    last = f"HTTP {resp.status_code} {error_type}: {message}"
                    continue
                self._error()
                raise PrometheusQueryError(error_type, message, expr)
            if resp.status_code in _RETRYABLE_STATUS:
                last = f"HTTP {resp.status_code}"
                continue
            if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
                self._error()
                raise PrometheusUnavailable(
                    f"unexpected answer from {url}: HTTP {resp.status_code}, {resp.text[:200]!r}"
                )
            return body["data"]
        self._error()
        raise PrometheusUnavailable(
            f"Prometheus at {self.base_url} unavailable after {self.retries + 1} attempts: {last}"
        )

    def _error(self) -> None:
        with self._count_lock:
            self.errors += 1

    def query(self, expr: str, time: float | None = None) -> list[Sample]:
        """Instant query; a scalar result comes back as one sample with no labels."""
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = _fmt_time(time)
        data = self._request("/api/v1/query", params)
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "vector":
            return [
                Sample(dict(r["metric"]), float(r["value"][0]), _float(r["value"][1]))
                for r in result
            ]
        if kind == "scalar":
            return [Sample({}, float(result[0]), _float(result[1]))]
        raise PrometheusQueryError("bad_data", f"expected an instant vector, got {kind}", expr)

    def query_matrix(self, expr: str, time: float | None = None) -> list[Series]:
        """Instant query of a range selector (e.g. `up[15m]`): the raw samples per series."""
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = _fmt_time(time)
        data = self._request("/api/v1/query", params)
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(
                "bad_data", f"expected a range vector, got {data.get('resultType')}", expr
            )
        return _series(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Range query evaluated at start, start+step, ..., end."""
        params = {
            "query": expr,
            "start": _fmt_time(start),
            "end": _fmt_time(end),
            "step": _fmt_time(step),
        }
        data = self._request("/api/v1/query_range", params)
        return _series(data["result"])


def _series(result: list[dict[str, Any]]) -> list[Series]:
    return [
        Series(dict(r["metric"]), [(float(t), _float(v)) for t, v in r["values"]]) for r in result
    ]


def _fmt_time(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, got {value}")
    return f"{value:.3f}"


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
