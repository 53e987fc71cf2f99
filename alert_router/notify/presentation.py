"""How alerts read to people: severity and colour, headlines, status changes, times, links."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from alert_router.notify.base import AlertData, NotificationData

SEVERITY_ORDER = ("critical", "warning", "info", "none")
SEVERITY_COLORS = {
    "critical": "#D0021B",
    "warning": "#F5A623",
    "info": "#4A90E2",
    "none": "#9B9B9B",
    "resolved": "#2EB67D",
}
# Alerts the rule engine sends when a server changes status; they get their own wording.
STATUS_CHANGE_ALERTS = ("ServerOffline", "ServerOnline")


def group_severity(data: NotificationData) -> str:
    """The highest severity among firing alerts, or "resolved" when none fires."""
    firing = {a.labels.get("severity", "none") for a in data.firing}
    if not firing:
        return "resolved"
    for severity in SEVERITY_ORDER:
        if severity in firing:
            return severity
    return "warning"  # an unknown severity is taken seriously, not silently downgraded


def by_severity(alerts: list[AlertData]) -> list[AlertData]:
    """Alerts with the most severe first (stable, so the original order breaks ties)."""
    rank = {name: i for i, name in enumerate(SEVERITY_ORDER)}
    return sorted(alerts, key=lambda a: rank.get(a.labels.get("severity", "none"), 1))


def severity_color(severity: str) -> str:
    """Hex colour for a severity (or "resolved")."""
    return SEVERITY_COLORS.get(severity, SEVERITY_COLORS["warning"])


def headline(alert: AlertData) -> str:
    """One sentence a person reads first: status changes in words, else the summary."""
    name = alert.labels.get("alertname", "alert")
    server = alert.labels.get("server") or alert.labels.get("instance")
    if name == "ServerOffline" and server:
        return f"{server} is back online" if alert.status == "resolved" else f"{server} is offline"
    if name == "ServerOnline" and server:
        return f"{server} is back online"
    summary = alert.annotations.get("summary")
    if summary:
        return summary
    return f"{name} on {server}" if server else name


def status_change(data: NotificationData) -> dict[str, str] | None:
    """Tag and sentence when every alert is a server status change (ServerOffline/ServerOnline)."""
    if not data.alerts or any(
        a.labels.get("alertname") not in STATUS_CHANGE_ALERTS for a in data.alerts
    ):
        return None
    offline = sorted(
        {
            a.labels.get("server") or a.labels.get("instance") or "?"
            for a in data.alerts
            if a.labels.get("alertname") == "ServerOffline" and a.status == "firing"
        }
    )
    online = sorted(
        {
            a.labels.get("server") or a.labels.get("instance") or "?"
            for a in data.alerts
            if a.labels.get("alertname") == "ServerOnline"
            or (a.labels.get("alertname") == "ServerOffline" and a.status == "resolved")
        }
        - set(offline)
    )
    if offline:
        text = (
            f"{offline[0]} is offline"
            if len(offline) == 1
            else f"{len(offline)} servers offline: {', '.join(offline)}"
        )
        if online:
            text += f"; back online: {', '.join(online)}"
        return {"tag": "OFFLINE", "text": text}
    text = (
        f"{online[0]} is back online"
        if len(online) == 1
        else f"{len(online)} servers back online: {', '.join(online)}"
    )
    return {"tag": "ONLINE", "text": text}


def format_datetime(value: datetime | None) -> str:
    """A UTC timestamp people read, e.g. "2026-11-22 00:53:34 UTC"."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    """A short human duration, e.g. "3h 5m" or "42s"."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    if not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


def alert_duration(alert: AlertData, now: datetime | None = None) -> str:
    """How long the alert fired (until it resolved, or until now)."""
    end = alert.ends_at if alert.status == "resolved" and alert.ends_at else None
    end = end or now or datetime.now(UTC)
    start = alert.starts_at if alert.starts_at.tzinfo else alert.starts_at.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return format_duration((end - start).total_seconds())


def silence_url(data: NotificationData, alert: AlertData | None = None) -> str:
    """A link to the console's silence form, pre-filled for the alert (or the group).

    The query is Alertmanager UI's `filter={a="b",...}`, which the console reads.
    """
    if not data.external_url:
        return ""
    labels = alert.labels if alert is not None else data.common_labels
    matchers = ",".join(f'{k}="{_escape_matcher(v)}"' for k, v in sorted(labels.items()))
    base = data.external_url.rstrip("/")
    return f"{base}/console/silences/new?filter={quote('{' + matchers + '}')}"


def _escape_matcher(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
