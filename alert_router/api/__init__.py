"""HTTP API blueprints: alerts, webhooks, silences, incidents, status, ops."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every blueprint on `app`."""
    from alert_router.api import alerts, groups, incidents, ops, silences, status, trace, webhooks

    for module in (alerts, groups, webhooks, silences, incidents, status, ops, trace):
        app.register_blueprint(module.bp)
