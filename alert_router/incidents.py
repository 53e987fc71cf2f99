"""Incidents: alerts of one group gathered into open → acknowledged → resolved → closed."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from alert_router.store import AlertRow, HistoryEvent, Store

# state -> states it may move to, and who moves it (router: automatic; api: a person).
TRANSITIONS: dict[str, set[str]] = {
    "open": {"acknowledged", "resolved", "closed"},
    "acknowledged": {"resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}


class TransitionError(Exception):
    """The requested incident transition is not allowed from its current state."""


def _event(
    incident_id: int,
    server: str,
    transition: str,
    now: float,
    *,
    actor: str = "router",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> HistoryEvent:
    return HistoryEvent(
        now,
        "incident",
        str(incident_id),
        server,
        transition,
        actor,
        reason,
        json.dumps(details or {}),
    )


# Alerts that exist to be always firing or to mute others: never a human's work.
NEVER_INCIDENT = frozenset({"Watchdog", "InfoInhibitor"})
OFFLINE, ONLINE = "ServerOffline", "ServerOnline"


def opens_incident(labels: Mapping[str, str], open_for: Collection[str]) -> bool:
    """Whether a firing alert needs a human: not Watchdog-like, severity in `open_for`.

    An alert without a severity label opens one (nothing says it may wait); ServerOnline
    never does, it closes the server's offline incident instead.
    """
    name = labels.get("alertname", "")
    if name in NEVER_INCIDENT or name == ONLINE:
        return False
    severity = labels.get("severity", "")
    if severity == "none":
        return False
    return not severity or severity in open_for


def _title(alert: AlertRow) -> str:
    title = alert.labels.get("alertname", "alert")
    server = alert.labels.get("server", "")
    return f"{title} on {server}" if server else title


class Incidents:
    """Opens, resolves and records incidents; all writes happen in the caller's transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def on_firing_many(
        self,
        items: list[tuple[AlertRow, str]],
        now: float,
        open_for: Collection[str] = ("critical", "warning"),
    ) -> list[HistoryEvent]:
        """Alerts started firing (with their incident keys): open or reopen incidents for
        those that need a human; a ServerOnline closes its server's offline incident."""
        events: list[HistoryEvent] = []
        for alert, _key in items:
            if alert.labels.get("alertname") == ONLINE:
                events += self._server_online(alert, now)
        items = [(alert, key) for alert, key in items if opens_incident(alert.labels, open_for)]
        if not items:
            return events
        found = self.store.open_incidents_for({key for _, key in items})
        new: dict[str, AlertRow] = {}
        for alert, key in items:
            if key not in found and key not in new:
                new[key] = alert
        if new:
            self.store.create_incidents(
                (
                    key,
                    _title(alert),
                    alert.labels.get("server", ""),
                    alert.labels.get("severity", "none"),
                    now,
                )
                for key, alert in new.items()
            )
            created = self.store.open_incidents_for(new)
            for key, alert in new.items():
                events.append(
                    _event(
                        created[key][0],
                        alert.labels.get("server", ""),
                        "open",
                        now,
                        details={"key": key, "first_alert": alert.fingerprint},
                    )
                )
            found.update(created)
        reopened: set[int] = set()
        for alert, key in items:
            incident_id, state = found[key]
            if state == "resolved" and incident_id not in reopened:
                reopened.add(incident_id)
                self.store.set_incident_state(incident_id, "open", now)
                events.append(
                    _event(
                        incident_id,
                        alert.labels.get("server", ""),
                        "open",
                        now,
                        reason="alert fired again",
                        details={"alert": alert.fingerprint},
                    )
                )
        self.store.link_incident_alerts((found[key][0], alert.fingerprint) for alert, key in items)
        return events

    def _server_online(self, alert: AlertRow, now: float) -> list[HistoryEvent]:
        """Close the server's ServerOffline incidents, recording the ServerOnline in them."""
        server = alert.labels.get("server", "")
        if not server:
            return []
        events = []
        for incident_id in self.store.incidents_with_alert(OFFLINE, server):
            self.store.set_incident_state(
                incident_id,
                "closed",
                now,
                actor="router",
                reason="server back online (ServerOnline)",
            )
            self.store.link_incident_alerts([(incident_id, alert.fingerprint)])
            events.append(
                _event(
                    incident_id,
                    server,
                    "closed",
                    now,
                    reason="server back online (ServerOnline)",
                    details={"alert": alert.fingerprint, "alertname": ONLINE},
                )
            )
        return events

    def on_resolved(self, alert: AlertRow, now: float) -> list[HistoryEvent]:
        """An alert resolved: resolve each of its incidents whose alerts have all resolved."""
        events = []
        for incident_id, _state in self.store.incidents_of_alert(alert.fingerprint):
            if self.store.incident_firing_count(incident_id, now) == 0:
                self.store.set_incident_state(incident_id, "resolved", now)
                events.append(
                    _event(
                        incident_id,
                        alert.labels.get("server", ""),
                        "resolved",
                        now,
                        reason="all alerts resolved",
                    )
                )
        return events

    def transition(
        self, incident_id: int, target: str, *, actor: str, reason: str, now: float
    ) -> dict[str, Any]:
        """A person acknowledges or closes an incident; recorded with who and why."""
        with self.store.tx():
            incident = self.store.get_incident(incident_id)
            if incident is None:
                raise LookupError(f"incident {incident_id} not found")
            if target not in TRANSITIONS[incident["state"]]:
                raise TransitionError(
                    f"cannot move incident {incident_id} from {incident['state']} to {target}"
                )
            self.store.set_incident_state(incident_id, target, now, actor=actor, reason=reason)
            self.store.add_history(
                [_event(incident_id, incident["server"], target, now, actor=actor, reason=reason)]
            )
        result = self.store.get_incident(incident_id)
        assert result is not None
        return result

    def auto_close(self, now: float, after: float) -> None:
        """Close incidents resolved for longer than `after` seconds (when configured)."""
        if after <= 0:
            return
        with self.store.tx():
            for incident_id in self.store.stale_resolved_incidents(now - after):
                self.store.set_incident_state(
                    incident_id, "closed", now, actor="router", reason="auto_close_after elapsed"
                )
                self.store.add_history(
                    [_event(incident_id, "", "closed", now, reason="auto_close_after elapsed")]
                )
