"""Server status: a pure function of heartbeats, the clock, what the pipeline could see, and alerts.

The lifecycle (docs/rules-engine.md draws it with every timing):

* `pending`: in the inventory and never reached (no heartbeat seen, ever). Never
  offline: a server that was never reached cannot have gone down. The engine
  raises ServerUnreachable (warning) once it stays pending too long (firing.py).
* `online` / `warning`: a heartbeat no older than the offline threshold;
  `warning` when a critical/warning condition fires or an anomaly is active.
* `offline`: reached before, heartbeat older than the threshold, *and* the
  pipeline has been able to observe the server for longer than the threshold.
  Staleness is measured from max(heartbeat, observable_since), so a restart of
  Prometheus, of the exporter or of the engine never reads as the fleet dying.
* `unknown`: the pipeline cannot see now (exporter down or stale, Prometheus
  unreachable): every server, at once. Also a reached server whose heartbeat
  is stale while the pipeline has not watched long enough, when nothing was
  known about it before.
* `suspended`: the inventory says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

STATUSES = ("pending", "online", "warning", "offline", "suspended", "unknown")
# Statuses a server keeps while the pipeline has not watched long enough to decide.
HELD = frozenset({"online", "warning", "offline"})


@dataclass(frozen=True)
class StatusInputs:
    """What the status decision needs for the whole fleet at one instant."""

    servers: frozenset[str]  # every server to decide (the inventory, when known)
    heartbeats: Mapping[str, float]  # newest heartbeat per server (unix seconds), any source
    suspended: frozenset[str]
    troubled: frozenset[str]  # servers with a firing condition or an active anomaly
    now: float
    offline_after_seconds: float  # already the grace threshold when grace applies
    reached: frozenset[str] = frozenset()  # servers with a heartbeat seen at any time before
    observable_since: float = -math.inf  # since when the pipeline could see the servers
    pipeline_ok: bool = True  # False: the exporter or Prometheus cannot see now
    previous: Mapping[str, str] = field(default_factory=dict)  # last status other than unknown


def decide_status(inputs: StatusInputs) -> dict[str, str]:
    """Status per server (see the module docstring for the lifecycle)."""
    return {server: status_of(server, inputs) for server in sorted(inputs.servers)}


def status_of(server: str, inputs: StatusInputs) -> str:
    """The status of one server."""
    if not inputs.pipeline_ok:
        return "unknown"
    if server in inputs.suspended:
        return "suspended"
    heartbeat = inputs.heartbeats.get(server)
    # A heartbeat from the future (clock skew) counts as fresh, never as stale.
    if heartbeat is not None and inputs.now - heartbeat <= inputs.offline_after_seconds:
        return "warning" if server in inputs.troubled else "online"
    if heartbeat is None and server not in inputs.reached:
        return "pending"
    since = max(heartbeat if heartbeat is not None else -math.inf, inputs.observable_since)
    if inputs.now - since > inputs.offline_after_seconds:
        return "offline"
    # Stale, but the pipeline has not watched long enough to call it offline: keep
    # what was known (no flap, no page), else say we do not know yet.
    previous = inputs.previous.get(server)
    return previous if previous in HELD else "unknown"


def pending_overdue(
    pending_since: float, observable_since: float, now: float, timeout_seconds: float
) -> bool:
    """Whether a pending server has been observably unreached for longer than the bound."""
    return now - max(pending_since, observable_since) >= timeout_seconds


def transitions(
    before: Mapping[str, str], after: Mapping[str, str]
) -> Iterable[tuple[str, str | None, str]]:
    """(server, old status or None, new status) for every server whose status changed."""
    for server, status in after.items():
        old = before.get(server)
        if old != status:
            yield server, old, status
