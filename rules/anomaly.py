"""Turn detector scores into anomalies for the rule engine.

One :class:`~rules.detector.Detector` per key (e.g. ``(server, metric)``);
:meth:`AnomalyTracker.observe` feeds it a point and returns an
:class:`AnomalyUpdate`.

Thresholds (all in :class:`AnomalyThresholds`, defaults below):

* an anomaly **starts** on a point whose score is ``>= start`` (0.75);
* its **severity** is taken from the highest score seen while it is active:
  ``low`` below ``medium`` (0.85), ``medium`` below ``high`` (0.93), else
  ``high``; it only ever rises while the anomaly lasts;
* it **resolves** once the scores have stayed below ``clear`` (0.5) for at
  least ``resolve_points`` (5) consecutive points *and* ``resolve_seconds``
  (300 s) since the last abnormal point, so a flapping series yields one
  anomaly, not a train of them;
* keys not observed for ``evict_after_seconds`` (7 days, measured on the
  timestamps fed in) are dropped, and at most ``max_keys`` (100,000) are kept,
  least recently observed dropped first.

The detector's scores are sparse by design (one high score at the onset of a
change, then quiet). 0.5 is the best NAB operating point; ``start`` sits
above it (fewer, surer alerts); see docs/anomaly-detection.md.

Keys must be JSON-friendly for persistence: strings, numbers, or tuples of
them (tuples come back as tuples).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from rules.detector import Detector, DetectorParams

STATE_VERSION = 1
SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class AnomalyThresholds:
    """Score thresholds and timings that turn scores into anomalies."""

    start: float = 0.75
    medium: float = 0.85
    high: float = 0.93
    clear: float = 0.5
    resolve_points: int = 5
    resolve_seconds: float = 300.0
    evict_after_seconds: float = 7 * 86400.0
    max_keys: int = 100_000


@dataclass(frozen=True)
class AnomalyUpdate:
    """What one observed point means for its key."""

    key: Hashable
    timestamp: float
    value: float
    score: float
    active: bool
    severity: str | None  # "low" / "medium" / "high" while active, else None
    started: bool  # this point opened the anomaly
    resolved: bool  # this point closed the anomaly
    started_at: float | None  # timestamp the current (or just resolved) anomaly began
    peak_score: float  # highest score of the current (or just resolved) anomaly


class _Track:
    """Per-key anomaly state next to the detector."""

    __slots__ = ("active", "started_at", "peak", "quiet", "last_abnormal", "last_seen")

    def __init__(self) -> None:
        self.active = False
        self.started_at: float | None = None
        self.peak = 0.0
        self.quiet = 0
        self.last_abnormal = -math.inf
        self.last_seen = -math.inf

    def to_json(self) -> list[Any]:
        return [
            self.active,
            self.started_at,
            self.peak,
            self.quiet,
            _enc(self.last_abnormal),
            _enc(self.last_seen),
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> _Track:
        t = cls()
        t.active, t.started_at, t.peak, t.quiet = bool(raw[0]), raw[1], float(raw[2]), int(raw[3])
        t.last_abnormal, t.last_seen = float(raw[4]), float(raw[5])
        return t


class AnomalyTracker:
    """Per-key detectors plus start / severity / resolution bookkeeping."""

    def __init__(
        self,
        thresholds: AnomalyThresholds | None = None,
        params: DetectorParams | None = None,
    ) -> None:
        self.thresholds = thresholds or AnomalyThresholds()
        self.params = params or DetectorParams()
        self._entries: OrderedDict[Hashable, tuple[Detector, _Track]] = OrderedDict()
        self._newest = -math.inf
        self._since_sweep = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def severity_of(self, score: float) -> str:
        """Map a score to low / medium / high."""
        th = self.thresholds
        if score >= th.high:
            return "high"
        if score >= th.medium:
            return "medium"
        return "low"

    def observe(self, key: Hashable, timestamp: float, value: float) -> AnomalyUpdate:
        """Score one point of ``key`` and update its anomaly state."""
        th = self.thresholds
        entry = self._entries.get(key)
        if entry is None:
            entry = (Detector(self.params), _Track())
            self._entries[key] = entry
            self._evict_over_cap()
        else:
            self._entries.move_to_end(key)
        det, tr = entry
        score = det.update(timestamp, value)
        if math.isfinite(timestamp):
            tr.last_seen = max(tr.last_seen, timestamp)
            self._newest = max(self._newest, timestamp)
        started = resolved = False
        if score >= th.start:
            if not tr.active:
                tr.active, started = True, True
                tr.started_at, tr.peak = timestamp, score
            tr.peak = max(tr.peak, score)
            tr.quiet = 0
            tr.last_abnormal = max(tr.last_abnormal, timestamp)
        elif tr.active:
            if score < th.clear and math.isfinite(value):
                tr.quiet += 1
            elif score >= th.clear:
                tr.quiet = 0
                tr.last_abnormal = max(tr.last_abnormal, timestamp)
            if tr.quiet >= th.resolve_points and timestamp - tr.last_abnormal >= th.resolve_seconds:
                tr.active, resolved = False, True
        update = AnomalyUpdate(
            key=key,
            timestamp=timestamp,
            value=value,
            score=score,
            active=tr.active,
            severity=self.severity_of(tr.peak) if tr.active else None,
            started=started,
            resolved=resolved,
            started_at=tr.started_at if (tr.active or resolved) else None,
            peak_score=tr.peak if (tr.active or resolved) else 0.0,
        )
        self._since_sweep += 1
        # A sweep scans every key, so sweep once per len(keys) observations
        # (amortised O(1)); a fixed 1024 cost 40 % of a 10,000-server cycle.
        if self._since_sweep >= max(1024, len(self._entries)):
            self.evict_idle()
        return update

    def evict_idle(self, now: float | None = None) -> int:
        """Drop keys not observed for ``evict_after_seconds``; return how many."""
        self._since_sweep = 0
        ref = self._newest if now is None else now
        limit = ref - self.thresholds.evict_after_seconds
        stale = [k for k, (_, tr) in self._entries.items() if tr.last_seen < limit]
        for k in stale:
            del self._entries[k]
        return len(stale)

    def _evict_over_cap(self) -> None:
        while len(self._entries) > self.thresholds.max_keys:
            self._entries.popitem(last=False)

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable state of every key (detector and anomaly bookkeeping)."""
        return {
            "version": STATE_VERSION,
            "newest": _enc(self._newest),
            "keys": [
                [_key_enc(k), det.get_state(), tr.to_json()]
                for k, (det, tr) in self._entries.items()
            ],
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        thresholds: AnomalyThresholds | None = None,
        params: DetectorParams | None = None,
    ) -> AnomalyTracker:
        """Rebuild a tracker from ``get_state()`` output (empty if incompatible)."""
        tracker = cls(thresholds, params)
        if state.get("version") != STATE_VERSION:
            return tracker
        tracker._newest = float(state.get("newest", "-inf"))
        for raw_key, det_state, tr_state in state.get("keys", []):
            tracker._entries[_key_dec(raw_key)] = (
                Detector.from_state(det_state, tracker.params),
                _Track.from_json(tr_state),
            )
        tracker._evict_over_cap()
        return tracker


def _enc(v: float) -> float | str:
    return v if math.isfinite(v) else repr(v)


def _key_enc(key: Hashable) -> Any:
    if isinstance(key, tuple):
        return {"t": [_key_enc(k) for k in key]}
    return key


def _key_dec(raw: Any) -> Hashable:
    if isinstance(raw, dict):
        return tuple(_key_dec(k) for k in raw["t"])
    if isinstance(raw, list):
        return tuple(_key_dec(k) for k in raw)
    return raw  # type: ignore[no-any-return]
