"""Streaming anomaly detector: one instance per series, O(1) work per point.

(Method description is completed as the detector evolves; see docs/anomaly-detection.md.)

Range novelty
    The detector keeps the range [lo, hi] of the values it has seen. A value
    beyond that range is surprising in proportion to how far beyond it lies,
    measured in units of the range itself: ``(x - hi) / (hi - lo)``. A level
    shift raises one alarm (the first value at the new level breaks the
    record; the following ones lie inside the widened range), a trend raises
    only tiny surprises, and a constant series that starts moving raises one.

Score
    The surprise ``u >= 0`` is mapped to ``u / (1 + u)`` in [0, 1).

Robustness
    NaN and infinities score 0 and leave the state untouched. Timestamps only
    serve to notice gaps; repeated or out-of-order timestamps are scored like
    any other point but never move the clock backwards.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True)
class DetectorParams:
    """Every tunable of the detector, with the defaults scored on NAB."""

    warmup: int = 150  # points learned before any score is emitted
    alpha_long: float = 0.002  # EW weight of the long-term mean/variance
    w_range: float = 1.0  # weight of the range-novelty surprise


class Detector:
    """Scores each new point of one series against that series' own history."""

    __slots__ = ("params", "n", "last_ts", "lo", "hi", "mean", "var")

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = params or DetectorParams()
        self.n = 0
        self.last_ts = -math.inf
        self.lo = math.inf
        self.hi = -math.inf
        self.mean = 0.0
        self.var = 0.0

    def update(self, timestamp: float, value: float) -> float:
        """Learn one point and return its anomaly score in [0, 1]."""
        x = float(value)
        if not math.isfinite(x):
            return 0.0
        p = self.params
        if timestamp > self.last_ts:
            self.last_ts = timestamp
        self.n += 1
        n = self.n
        u = 0.0
        lo = self.lo
        hi = self.hi
        if n > p.warmup:
            rng = hi - lo
            if rng <= 0.0:
                rng = 1e-9 * max(1.0, abs(hi))
            if x > hi:
                u = p.w_range * (x - hi) / rng
            elif x < lo:
                u = p.w_range * (lo - x) / rng
        if x > hi:
            self.hi = x
        if x < lo:
            self.lo = x
        a = p.alpha_long if n * p.alpha_long > 1.0 else 1.0 / n
        d = x - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)
        return u / (1.0 + u)

    def get_state(self) -> dict[str, Any]:
        """Return the full state as a JSON-serialisable dict."""
        state: dict[str, Any] = {"version": STATE_VERSION}
        for name in self.__slots__:
            if name == "params":
                continue
            state[name] = _enc(getattr(self, name))
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], params: DetectorParams | None = None) -> Detector:
        """Rebuild a detector from ``get_state()`` output (fresh if incompatible)."""
        det = cls(params)
        if state.get("version") != STATE_VERSION:
            return det
        for name in cls.__slots__:
            if name != "params" and name in state:
                setattr(det, name, _dec(state[name]))
        return det


def params_from_dict(raw: dict[str, Any]) -> DetectorParams:
    """Build params from a mapping, rejecting unknown keys."""
    known = {f.name for f in fields(DetectorParams)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown detector parameter(s): {sorted(unknown)}")
    return DetectorParams(**{**asdict(DetectorParams()), **raw})


def _enc(v: Any) -> Any:
    # JSON has no infinities: encode them as strings.
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    return v


def _dec(v: Any) -> Any:
    if v in ("inf", "-inf", "nan"):
        return float(v)
    return v
