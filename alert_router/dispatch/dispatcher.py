"""The dispatcher step: inbox → alerts and groups → mute → dedupe → outbox, with `now` given."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alert_router import pipeline
from alert_router.config import RouterConfig
from alert_router.dedupe import NFLOG_KEY, LogEntry
from alert_router.diagnostics.fetch import DiagnosticsFetcher
from alert_router.dispatch.route import Route
from alert_router.fingerprint import fingerprint
from alert_router.inbox import InboxRow
from alert_router.incidents import Incidents
from alert_router.ingest import trusted_postable
from alert_router.inhibit import Inhibitor, source_alertnames
from alert_router.metrics import RouterMetrics
from alert_router.notify.base import Notifier
from alert_router.silence import Silencer
from alert_router.store import AlertRow, GroupRow, HistoryEvent, Store, storable
from alert_router.trace import RETENTION as TRACE_RETENTION
from alert_router.trace import TraceRow, trace_of
from alert_router.trace import row as trace_row

log = logging.getLogger(__name__)
# Errors that say a request's data cannot be merged (as opposed to the store being busy or
# gone, which a later step retries): such a request is set aside so the rest flow.
POISON: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    RecursionError,
    OverflowError,
)
Incoming = tuple[dict[str, Any], float, float, str]  # alert, received_at, timeout, fingerprint
NotifierLookup = Callable[[str], Sequence[Notifier]]  # receiver name -> its notifiers
INBOX_BATCH = 500  # requests per transaction (request threads write elsewhere, never wait)
INBOX_BATCH_BYTES = 2_000_000  # ...but about this much alert JSON at most
MAX_BATCHES_PER_STEP = 40
# Label sets whose fingerprint is kept: bounded in entries and in entry size, because each
# entry keeps its strings alive (at most about 100 MB, whatever writers send).
FINGERPRINT_CACHE = 50_000
FINGERPRINT_CACHED_CHARS = 512
GC_EVERY = 60.0
RESOLVED_RETENTION = 3600.0


@dataclass
class StepResult:
    """What one step did (for tests and logs)."""

    ingested: int = 0
    flushed: list[str] = field(default_factory=list)
    enqueued: int = 0


def _merge(
    old: tuple[float, float, str] | None,
    new: dict[str, Any],
    received_at: float,
    timeout: float,
    fp: str,
) -> AlertRow:
    """Alertmanager's merge: a continuing alert keeps its first start; the latest end wins.

    `old` is the stored (starts_at, ends_at, state); the row's state stays the stored one
    until the caller records a transition.
    """
    starts = new["startsAt"] if new["startsAt"] is not None else received_at
    ends = new["endsAt"] if new["endsAt"] is not None else max(received_at, starts) + timeout
    if old is not None and old[1] >= starts and old[0] < starts:
        starts = old[0]
    return AlertRow(
        fp,
        new["labels"],
        new["annotations"],
        starts,
        ends,
        new["generatorURL"],
        received_at,
        old[2] if old else "new",
    )


def _chars(items: tuple[tuple[str, str], ...]) -> int:
    """The characters of a label set's names and values (never raises: a value that is not
    text, which ingest never stores, counts as too large to cache)."""
    try:
        return sum(len(name) + len(value) for name, value in items)
    except TypeError:
        return FINGERPRINT_CACHED_CHARS + 1


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def notification_payload(
    receiver: str,
    group_key: str,
    group_labels: dict[str, str],
    alerts: list[AlertRow],
    now: float,
    external_url: str,
) -> dict[str, Any]:
    """The outbox form of one notification (turned into NotificationData when sent)."""
    items = [
        {
            "status": "firing" if a.firing(now) else "resolved",
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": a.starts_at,
            "endsAt": None if a.firing(now) else a.ends_at,
            "generatorURL": a.generator_url,
            "fingerprint": a.fingerprint,
        }
        for a in alerts
    ]
    return {
        "receiver": receiver,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "alerts": items,
        "groupLabels": group_labels,
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "groupKey": group_key,
    }


class Dispatcher:
    """Turns stored requests into groups and due groups into outbox rows."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], RouterConfig],
        notifiers: NotifierLookup,
        metrics: RouterMetrics,
    ) -> None:
        self.store = store
        self.config = config
        self.notifiers = notifiers
        self.metrics = metrics
        self.incidents = Incidents(store)
        self._last_gc = 0.0
        self._fingerprints: dict[tuple[tuple[str, str], ...], str] = {}
        self._routed_config: RouterConfig | None = None
        self.diagnostics = DiagnosticsFetcher(lambda: self.config().diagnostics)

    def step(self, now: float, *, wait: bool = True) -> StepResult:
        """Ingest what arrived, resolve what timed out, flush due groups, collect garbage.

        A due group whose diagnostics are still being fetched flushes after every other
        due group; with wait=False (the runner) it is left for a later step instead, so
        the dispatcher never waits for an exporter.
        """
        result = StepResult()
        for _ in range(MAX_BATCHES_PER_STEP):  # then flush, even while alerts keep coming
            count = self.ingest(now)
            result.ingested += count
            if count == 0:
                break
        self.resolve_expired(now)
        self.flush_due(now, result, wait=wait)
        if now - self._last_gc >= GC_EVERY:
            self.gc(now)
        return result

    def _routes(self, cfg: RouterConfig) -> dict[str, Route]:
        return {r.route_id: r for r in cfg.route.walk()}

    def _fingerprint(self, labels: dict[str, str]) -> str:
        # Prometheus re-sends every firing alert each evaluation: hash each label set once.
        key = tuple(labels.items())
        fp = self._fingerprints.get(key)
        if fp is None:
            fp = fingerprint(labels)
            if _chars(key) <= FINGERPRINT_CACHED_CHARS:
                if len(self._fingerprints) >= FINGERPRINT_CACHE:
                    self._fingerprints.clear()
                self._fingerprints[key] = fp
        return fp

    def ingest(self, now: float) -> int:
        """Merge stored requests into alerts and groups (one transaction per batch).

        A request that cannot be merged (undecodable, or data the store refuses) is set
        aside with a log line and a metric; the requests around it are merged.
        """
        batch = self.store.inbox.read(INBOX_BATCH)
        if batch is None:
            return 0
        inbox_file, rows = batch
        size = 0
        for i, row in enumerate(rows):
            size += len(row[3])
            if size > INBOX_BATCH_BYTES:
                rows = rows[: max(i, 1)]
                break
        cfg = self.config()
        # After a reload every alert is routed again through the new tree as it arrives.
        reroute = cfg is not self._routed_config
        self._routed_config = cfg
        parsed: list[tuple[InboxRow, list[Incoming]]] = []
        poison: list[tuple[InboxRow, BaseException]] = []
        for row in rows:
            try:
                parsed.append((row, self._parse(row, cfg)))
            except POISON as exc:
                poison.append((row, exc))
        try:
            count = self._merge(inbox_file, rows[-1][0], parsed, poison, now, cfg, reroute)
        except self.store.inbox.conflict:
            raise
        except POISON + self.store.data_errors:
            # Find the culprit: merge the requests one by one, setting aside what fails.
            count = 0
            items: list[tuple[InboxRow, list[Incoming] | BaseException]] = [*parsed, *poison]
            items.sort(key=lambda item: item[0][0])
            for row, alerts in items:
                if not isinstance(alerts, BaseException):
                    try:
                        count += self._merge(
                            inbox_file, row[0], [(row, alerts)], [], now, cfg, reroute
                        )
                        continue
                    except self.store.inbox.conflict:
                        raise
                    except POISON + self.store.data_errors as exc:
                        alerts = exc
                self._merge(inbox_file, row[0], [], [(row, alerts)], now, cfg, reroute)
        self.store.inbox.trim(inbox_file, rows[-1][0])
        return count

    def _parse(self, row: InboxRow, cfg: RouterConfig) -> list[Incoming]:
        _id, source, received_at, body, form = row
        timeout = (
            cfg.webhook_resolve_timeout
            if source in ("alertmanager", "grafana")
            else cfg.resolve_timeout
        )
        alerts = json.loads(body)
        if form == "postable":
            alerts = trusted_postable(alerts, now=received_at)
        return [(a, received_at, timeout, self._fingerprint(a["labels"])) for a in alerts]

    def _report_set_aside(self, rows: list[tuple[InboxRow, BaseException]]) -> None:
        """Once the set-aside rows are committed: one log line and one count each."""
        for row, exc in rows:
            self.metrics.set_aside.labels("inbox").inc()
            log.error(
                "inbox request %s from %s set aside, it cannot be merged: %s",
                row[0],
                storable(row[1]),
                storable(f"{type(exc).__name__}: {exc}")[:300],
            )

    def _set_aside(self, rows: list[tuple[InboxRow, BaseException]], now: float) -> None:
        self.store.set_aside(
            [
                ("inbox", row[1], row[2], row[3], f"{type(exc).__name__}: {exc}"[:300], now)
                for row, exc in rows
            ]
        )

    def _merge(
        self,
        inbox_file: str,
        last_id: int,
        parsed: list[tuple[InboxRow, list[Incoming]]],
        poison: list[tuple[InboxRow, BaseException]],
        now: float,
        cfg: RouterConfig,
        reroute: bool,
    ) -> int:
        incoming = [item for _, alerts in parsed for item in alerts]
        with self.store.tx():
            if poison:
                self._set_aside(poison, now)
            existing = self.store.alert_times({fp for _, _, _, fp in incoming})
            merged: dict[str, AlertRow] = {}
            for raw, received_at, timeout, fp in incoming:
                prev = merged.get(fp)
                old = (prev.starts_at, prev.ends_at, prev.state) if prev else existing.get(fp)
                merged[fp] = _merge(old, raw, received_at, timeout, fp)
            events: list[HistoryEvent] = []
            groups: dict[str, tuple[str, str, str, str, float, float]] = {}
            members: list[tuple[str, str]] = []
            expedite: set[str] = set()
            fired: list[tuple[AlertRow, str]] = []
            became_resolved: list[AlertRow] = []
            traces: list[TraceRow] = []
            labels_json: dict[str, str] = {}
            for alert in merged.values():
                state = "firing" if alert.firing(now) else "resolved"
                changed = state != alert.state
                trace = ""
                if changed:  # an alert re-sent unchanged (every evaluation) is not traced
                    trace = trace_of(alert.labels, alert.annotations, alert.starts_at)
                    traces.append(
                        trace_row(
                            trace,
                            now,
                            "received",
                            state,
                            alert.fingerprint,
                            alertname=alert.labels.get("alertname", ""),
                            server=alert.labels.get("server", ""),
                        )
                    )
                first_key = ""  # the alert's group on its first route (its incident's key)
                # A firing alert that keeps firing is already in its groups.
                if reroute or state != "firing" or alert.state != "firing":
                    for route in cfg.route.match(alert.labels):
                        key = route.group_key(alert.labels)
                        first_key = first_key or key
                        # Alertmanager's aggrGroup.insert: an alert that started more than
                        # group_wait ago flushes a group that has not flushed yet at once.
                        old_alert = alert.starts_at + route.group_wait < now
                        if key not in groups:
                            groups[key] = (
                                key,
                                route.route_id,
                                route.receiver,
                                json.dumps(route.group_labels(alert.labels)),
                                now,
                                now if old_alert else now + route.group_wait,
                            )
                        elif old_alert and groups[key][5] > now:
                            groups[key] = (*groups[key][:5], now)
                        if old_alert:
                            expedite.add(key)
                        members.append((key, alert.fingerprint))
                        if state == "firing" and alert.state != "firing":
                            traces.append(
                                trace_row(
                                    trace,
                                    now,
                                    "grouped",
                                    "ok",
                                    alert.fingerprint,
                                    group_key=key,
                                    receiver=route.receiver,
                                )
                            )
                        if route.diagnostics and state == "firing":
                            # Started now, so group_wait covers the run (no thread waits).
                            self.diagnostics.prefetch(key, alert.labels)
                if changed:
                    server = alert.labels.get("server", "")
                    # The history line and a new alert's row hold the same label JSON.
                    encoded = labels_json[alert.fingerprint] = json.dumps(alert.labels)
                    events.append(
                        HistoryEvent(
                            now, "alert", alert.fingerprint, server, state, details=encoded
                        )
                    )
                    if state == "firing":
                        fired.append((alert, first_key))
                    elif alert.state == "firing":
                        became_resolved.append(alert)
                    alert.state = state
            self.store.upsert_alerts(
                (a for fp, a in merged.items() if fp not in existing), labels_json
            )
            self.store.update_alerts(a for fp, a in merged.items() if fp in existing)
            events += self.incidents.on_firing_many(fired, now, cfg.incident_open_for)
            for alert in became_resolved:
                events += self.incidents.on_resolved(alert, now)
            self.store.ensure_groups(groups.values())
            if expedite:
                self.store.expedite_unflushed_groups(expedite, now)
            self.store.add_group_alerts(members)
            self.store.add_history(events)
            self.store.add_trace(traces)
            self.store.inbox.mark_merged(inbox_file, last_id)
        self._report_set_aside(poison)
        return len(incoming)

    def resolve_expired(self, now: float) -> None:
        """Record the alerts whose end time passed without an update (resolve_timeout)."""
        with self.store.tx():
            expired = self.store.newly_resolved(now)
            if not expired:
                return
            self.store.set_alert_state([a.fingerprint for a in expired], "resolved")
            events = [
                HistoryEvent(
                    now,
                    "alert",
                    a.fingerprint,
                    a.labels.get("server", ""),
                    "resolved",
                    reason="ended",
                    details=json.dumps(a.labels),
                )
                for a in expired
            ]
            for alert in expired:
                events += self.incidents.on_resolved(alert, now)
            self.store.add_history(events)
            self.store.add_trace(
                trace_row(
                    trace_of(a.labels, a.annotations, a.starts_at),
                    now,
                    "resolved",
                    "ended",
                    a.fingerprint,
                )
                for a in expired
            )

    def flush_due(self, now: float, result: StepResult | None = None, *, wait: bool = True) -> None:
        """Flush every group whose timer is due: mute, dedupe, enqueue, record.

        Diagnostics are awaited here, outside every transaction, and only after the groups
        that need not wait have flushed (wait=False: not at all, see step).
        """
        due = self.store.due_groups(now)
        if not due:
            return
        cfg = self.config()
        routes = self._routes(cfg)
        silencer = Silencer(self.store.list_silences(), now)
        inhibitor = (
            Inhibitor(
                cfg.inhibit_rules,
                self.store.firing_labels(now, source_alertnames(cfg.inhibit_rules)),
            )
            if cfg.inhibit_rules
            else None
        )
        held: list[tuple[float, GroupRow, dict[str, dict[str, str]]]] = []
        for group in due:
            route = routes.get(group.route_id)
            if route is not None and route.diagnostics:
                servers = self._diagnosed_servers(group.group_key, now)
                until = self.diagnostics.pending_until(group.group_key, servers)
                if until is not None:
                    held.append((until, group, servers))
                    continue
            self._flush_or_set_aside(group, route, silencer, inhibitor, now, cfg, result)
        if not wait:
            return
        for _, group, servers in sorted(held, key=lambda item: item[0]):
            self.diagnostics.wait(group.group_key, servers)
            self._flush_or_set_aside(
                group, routes.get(group.route_id), silencer, inhibitor, now, cfg, result
            )

    def _diagnosed_servers(self, group_key: str, now: float) -> dict[str, dict[str, str]]:
        """server -> labels of the group's firing alerts, as _notify asks diagnostics for."""
        try:
            members = self.store.group_members(group_key)
        except POISON + self.store.data_errors:
            return {}  # unreadable: the flush sets such alerts aside, waiting for nothing
        return {
            a.labels["server"]: a.labels
            for a in reversed(members)
            if a.firing(now) and a.labels.get("server")
        }

    def _flush_or_set_aside(
        self,
        group: GroupRow,
        route: Route | None,
        silencer: Silencer,
        inhibitor: Inhibitor | None,
        now: float,
        cfg: RouterConfig,
        result: StepResult | None,
    ) -> None:
        interval = route.group_interval if route else cfg.route.group_interval
        try:
            enqueued = self._flush(group, route, silencer, inhibitor, now, cfg)
        except self.store.inbox.conflict:
            raise
        except POISON + self.store.data_errors as exc:
            # A group whose stored alerts cannot be read must not hold up the others:
            # it waits a group_interval (and is reported) while the rest flush.
            # Its unreadable alerts are set aside; the rest flush at its next interval.
            with self.store.tx():
                moved = self.store.set_aside_unreadable(group.group_key, now)
                self.store.set_group_flushed(group.group_key, now, now + interval)
            self.metrics.set_aside.labels("group").inc()
            log.error(
                "group %s could not be flushed (%s: %s); %d unreadable alert(s) set "
                "aside, the group flushes again in %gs",
                storable(group.group_key),
                type(exc).__name__,
                storable(str(exc))[:300],
                moved,
                interval,
            )
            return
        if result is not None:
            result.flushed.append(group.group_key)
            result.enqueued += enqueued

    def _flush(
        self,
        group: GroupRow,
        route: Route | None,
        silencer: Silencer,
        inhibitor: Inhibitor | None,
        now: float,
        cfg: RouterConfig,
    ) -> int:
        """Flush one group: the pipeline's mute, dedupe and queue (one transaction)."""
        repeat = route.repeat_interval if route else cfg.route.repeat_interval
        interval = route.group_interval if route else cfg.route.group_interval
        with self.store.tx():
            members = self.store.group_members(group.group_key)
            kept, muted = pipeline.mute(members, silencer, inhibitor)
            for _, why in muted:
                self.metrics.muted.labels(why).inc()
            self.store.add_trace(
                trace_row(
                    trace_of(alert.labels, alert.annotations, alert.starts_at),
                    now,
                    "muted",
                    why,
                    alert.fingerprint,
                    group_key=group.group_key,
                )
                for alert, why in muted
            )
            firing = frozenset(a.fingerprint for a in kept if a.firing(now))
            resolved = frozenset(a.fingerprint for a in kept if not a.firing(now))
            # Alertmanager's pipeline stops when the mute stage leaves no alert: no
            # notification and no log entry, so the log still holds what was last sent.
            enqueued = (
                self._notify(
                    group.group_key,
                    group.receiver,
                    group.group_labels,
                    kept,
                    firing,
                    resolved,
                    repeat,
                    now,
                    cfg,
                    diagnose=bool(route and route.diagnostics),
                )
                if kept
                else 0
            )
            done = [a.fingerprint for a in members if not a.firing(now)]
            self.store.remove_group_alerts(group.group_key, done)
            if len(done) == len(members):
                self.store.delete_group(group.group_key)
                self.diagnostics.forget_group(group.group_key)
            else:
                self.store.set_group_flushed(group.group_key, now, now + interval)
        return enqueued

    def _notify(
        self,
        group_key: str,
        receiver: str,
        group_labels: dict[str, str],
        kept: list[AlertRow],
        firing: frozenset[str],
        resolved: frozenset[str],
        repeat: float,
        now: float,
        cfg: RouterConfig,
        *,
        diagnose: bool = False,
    ) -> int:
        enqueued = 0
        diagnostics: dict[str, Any] | None = None
        for index, notifier in enumerate(self.notifiers(receiver)):
            decision = pipeline.dedupe(
                self.store,
                group_key,
                receiver,
                index,
                notifier,
                firing,
                resolved,
                repeat_interval=repeat,
                now=now,
            )
            if not decision.notify:
                if decision.reason == "duplicate":
                    self.metrics.deduped.labels(receiver).inc()
                continue
            alerts = (
                kept if notifier.send_resolved else [a for a in kept if a.fingerprint in firing]
            )
            entry = LogEntry(firing, resolved, now)
            if alerts:
                payload = notification_payload(
                    receiver, group_key, group_labels, alerts, now, cfg.external_url
                )
                payload[NFLOG_KEY] = {"firing": sorted(firing), "resolved": sorted(resolved)}
                if diagnose and firing:
                    if diagnostics is None:  # once per flush, shared by the integrations
                        servers = {
                            a.labels["server"]: a.labels
                            for a in reversed(kept)
                            if a.fingerprint in firing and a.labels.get("server")
                        }
                        diagnostics = self.diagnostics.collect(group_key, servers)
                        self.store.add_trace(
                            trace_row(
                                trace_of(a.labels, a.annotations, a.starts_at),
                                now,
                                "diagnostics",
                                "included" if diagnostics.get("included") else "without",
                                a.fingerprint,
                                group_key=group_key,
                                note=diagnostics.get("note", ""),
                            )
                            for a in kept
                            if a.fingerprint in firing
                        )
                    payload["diagnostics"] = diagnostics
                pipeline.queue(self.store, group_key, receiver, index, notifier.kind, payload, now)
                self.store.add_trace(
                    trace_row(
                        trace_of(a.labels, a.annotations, a.starts_at),
                        now,
                        "queued",
                        "firing" if a.fingerprint in firing else "resolved",
                        a.fingerprint,
                        receiver=receiver,
                        integration=notifier.kind,
                        group_key=group_key,
                    )
                    for a in alerts
                )
                enqueued += 1
            else:
                # Only resolved alerts for a receiver that does not want them: nothing to send,
                # logged at once (Alertmanager's RetryStage reports them as notified).
                self.store.put_nflog(group_key, receiver, index, entry)
        return enqueued

    def gc(self, now: float) -> None:
        """Forget what no longer matters: old resolved alerts, sent and long given-up
        notifications, silences, traces, history past its retention."""
        self._last_gc = now
        with self.store.tx():
            self.store.gc_alerts(now - RESOLVED_RETENTION)
            # Given-up notifications stay as long as their traces, which can requeue them.
            self.store.gc_outbox(now - 86400.0, now - TRACE_RETENTION)
            self.store.gc_nflog(now - 5 * 86400.0)
            self.store.gc_silences(now - 5 * 86400.0)
            self.store.gc_trace(now - TRACE_RETENTION)
            retention = self.config().history_retention
            if retention > 0:
                self.store.gc_history(now - retention)
        self.incidents.auto_close(now, self.config().incident_auto_close)
