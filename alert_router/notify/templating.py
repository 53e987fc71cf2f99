"""Jinja2 templates for notifications: bundled files, inline config strings, one context."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from alert_router.diagnostics.fetch import as_text
from alert_router.notify.base import AlertData, NotificationData, NotifyError, ReceiverConfigError
from alert_router.notify.presentation import (
    alert_duration,
    by_severity,
    format_datetime,
    group_severity,
    headline,
    severity_color,
    silence_url,
    status_change,
)
from alert_router.trace import trace_of

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def template_context(data: NotificationData) -> dict[str, Any]:
    """The variables every template sees: the NotificationData fields plus helpers."""
    return {
        "data": data,
        "receiver": data.receiver,
        "status": data.status,
        "alerts": data.alerts,
        "firing": by_severity(data.firing),
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
        "diagnostics": data.diagnostics,
        "diagnostics_text": as_text(data.diagnostics),
    }


def _sorted_pairs(mapping: dict[str, str]) -> list[tuple[str, str]]:
    # alertname first, as Alertmanager's SortedPairs does, then alphabetical
    return sorted(mapping.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))


def _trace_id(alert: AlertData) -> str:
    """The alert's trace id, the one `stacksense-router trace ID` answers for."""
    return trace_of(alert.labels, alert.annotations, alert.starts_at.timestamp())


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(
        datetime=format_datetime,
        duration=alert_duration,
        headline=headline,
        severity_color=severity_color,
        sorted_pairs=_sorted_pairs,
        tojson_compact=lambda v: json.dumps(v, sort_keys=True),
        trace_id=_trace_id,
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
_HTML_STRINGS = _configure(jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined))
_TEXT_STRINGS = _configure(jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined))


def slack_escape(value: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup (&, <, >)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack mrkdwn strings: every {{ expression }} is escaped so that a label value such as
# "<!channel>" cannot ping a channel; the template's own text is left as written.
_SLACK_STRINGS = _configure(
    jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, finalize=slack_escape)
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
                f"{path}: unknown template {spec!r} (available: {', '.join(available_templates())})"
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
