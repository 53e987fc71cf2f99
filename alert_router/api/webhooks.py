"""Other ingest forms: Alertmanager's webhook (v4), Grafana's webhook, the generic form."""

from __future__ import annotations

from flask import Blueprint, Response

from alert_router.api.common import accept_alerts, register_error_handlers
from alert_router.ingest import alertmanager_webhook, generic_alerts, grafana_webhook

bp = Blueprint("webhooks", __name__)
register_error_handlers(bp)


@bp.post("/api/v1/webhook/alertmanager")
def alertmanager() -> Response:
    """A real Alertmanager's webhook_configs target (payload version "4")."""
    return accept_alerts("alertmanager", alertmanager_webhook)


@bp.post("/api/v1/webhook/grafana")
def grafana() -> Response:
    """Grafana's webhook contact point."""
    return accept_alerts("grafana", grafana_webhook)


@bp.post("/api/v1/alerts")
def generic() -> Response:
    """The generic JSON form documented in docs/alert-router.md."""
    return accept_alerts("generic", generic_alerts)
