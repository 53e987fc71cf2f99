"""Jinja2 templates for notifications: bundled files, inline config strings, and their helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from alert_router.notify.base import (
    AlertData,
    NotificationData,
    NotifyError,
    ReceiverConfigError,
)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

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
    """Alertmanager-UI style link that pre-fills a silence for the alert (or the group)."""
    if not data.external_url:
        return ""
    labels = alert.labels if alert is not None else data.common_labels
    matchers = ",".join(f'{k}="{_escape_matcher(v)}"' for k, v in sorted(labels.items()))
    return f"{data.external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}')}"


def _escape_matcher(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def template_context(data: NotificationData) -> dict[str, Any]:
    """The variables every template sees: the NotificationData fields plus helpers."""
    return {
        "data": data,
        "receiver": data.receiver,
        "status": data.status,
        "alerts": data.alerts,
        "firing": data.firing,
        "resolved": data.resolved,
        "group_labels": data.group_labels,
        "common_labels": data.common_labels,
        "common_annotations": data.common_annotations,
        "external_url": data.external_url,
        "group_key": data.group_key,
        "truncated_alerts": data.truncated_alerts,
        "severity": group_severity(data),
        "color": severity_color(group_severity(data)),
        "silence_url": silence_url(data),
        "status_change": status_change(data),
        "now": datetime.now(UTC),
    }


def _sorted_pairs(mapping: dict[str, str]) -> list[tuple[str, str]]:
    # alertname first, as Alertmanager's SortedPairs does, then alphabetical
    return sorted(mapping.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(
        datetime=format_datetime,
        duration=alert_duration,
        headline=headline,
        severity_color=severity_color,
        sorted_pairs=_sorted_pairs,
        tojson_compact=lambda v: json.dumps(v, sort_keys=True),
    )
    env.globals.update(silence_url_for=silence_url)
    return env


def _file_environment() -> jinja2.Environment:
    return _configure(
        jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "html.j2", "htm"), default_for_string=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
    )


_FILES = _file_environment()
_HTML_STRINGS = _configure(
    jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
)
_TEXT_STRINGS = _configure(
    jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
)


def slack_escape(value: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup (&, <, >)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack mrkdwn strings: every {{ expression }} is escaped so that a label value such as
# "<!channel>" cannot ping a channel; the template's own text is left as written.
_SLACK_STRINGS = _configure(
    jinja2.Environment(
        autoescape=False, undefined=jinja2.StrictUndefined, finalize=slack_escape
    )
)
_ENVIRONMENTS = {"html": _HTML_STRINGS, "text": _TEXT_STRINGS, "slack": _SLACK_STRINGS}


def available_templates() -> list[str]:
    """Names of the bundled templates."""
    return sorted(p.name for p in TEMPLATE_DIR.glob("*.j2"))


def render_template(name: str, data: NotificationData) -> str:
    """Render a bundled template (e.g. "email.html.j2") against `data`."""
    try:
        template = _FILES.get_template(name)
    except jinja2.TemplateNotFound:
        raise ValueError(
            f"unknown template {name!r} (available: {', '.join(available_templates())})"
        ) from None
    return template.render(template_context(data))


class TemplateRef:
    """A template given in config: a bundled name, an absolute .j2 path, or an inline string."""

    def __init__(self, spec: str, *, path: str, flavor: str = "text") -> None:
        self.spec = spec
        env = _ENVIRONMENTS[flavor]
        try:
            if _looks_like_file(spec):
                if spec.startswith("/"):
                    source = Path(spec).read_text(encoding="utf-8")
                    self.template = env.from_string(source)
                else:
                    self.template = _FILES.get_template(spec)
            else:
                self.template = env.from_string(spec)
        except jinja2.TemplateNotFound:
            raise ReceiverConfigError(
                f"{path}: unknown template {spec!r} "
                f"(available: {', '.join(available_templates())})"
            ) from None
        except OSError as exc:
            raise ReceiverConfigError(f"{path}: cannot read {spec}: {exc.strerror}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise ReceiverConfigError(
                f"{path}: template syntax error at line {exc.lineno}: {exc.message}"
            ) from None

    def render(self, data: NotificationData) -> str:
        """Render against `data`; errors raise jinja2 exceptions for the caller to classify."""
        return self.template.render(template_context(data))


def _looks_like_file(spec: str) -> bool:
    return spec.endswith(".j2") and "{" not in spec and "\n" not in spec


def render_or_fail(template: TemplateRef, data: NotificationData, *, kind: str, what: str) -> str:
    """Render a config template; a failure is a NotifyError (not retryable: it will fail again)."""
    try:
        return template.render(data)
    except jinja2.TemplateError as exc:
        raise NotifyError(
            f"{kind}: cannot render {what}: {type(exc).__name__}: {exc}",
            retryable=False,
            reason="template",
        ) from None
