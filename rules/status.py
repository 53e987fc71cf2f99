"""Server status: a pure function of heartbeats, the clock, grace, suspension and alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STATUSES = ("online", "warning", "offline", "suspended")


@dataclass(frozen=True)
class StatusInputs:
    """What the status decision needs for the whole fleet at one instant."""

    servers: frozenset[str]  # every server known (inventory, heartbeats, history)
    heartbeats: Mapping[str, float]  # newest heartbeat per server (unix seconds), any source
    suspended: frozenset[str]
    troubled: frozenset[str]  # servers with a firing condition or an active anomaly
    now: float
    offline_after_seconds: float  # already the grace threshold when grace applies


def decide_status(inputs: StatusInputs) -> dict[str, str]:
    """Status per server: suspended, else offline (stale/absent heartbeat), warning, online."""
    out: dict[str, str] = {}
    for server in sorted(inputs.servers):
        out[server] = status_of(server, inputs)
    return out


def status_of(server: str, inputs: StatusInputs) -> str:
    """The status of one server."""
    if server in inputs.suspended:
        return "suspended"
    heartbeat = inputs.heartbeats.get(server)
    # A heartbeat from the future (clock skew) counts as fresh, never as stale.
    if heartbeat is None or inputs.now - heartbeat > inputs.offline_after_seconds:
        return "offline"
    if server in inputs.troubled:
        return "warning"
    return "online"


def transitions(before: Mapping[str, str], after: Mapping[str, str]) -> Iterable[
        tuple[str, str | None, str]]:
    """(server, old status or None, new status) for every server whose status changed."""
    for server, status in after.items():
        old = before.get(server)
        if old != status:
            yield server, old, status
