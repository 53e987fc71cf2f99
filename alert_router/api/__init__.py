"""HTTP API blueprints: alerts, groups, silences, incidents, status, ops, trace (ingest:
api.fastpath, in WSGI)."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every blueprint on `app`."""
    from alert_router.api import alerts, groups, incidents, ops, silences, status, trace

    for module in (alerts, groups, silences, incidents, status, ops, trace):
        app.register_blueprint(module.bp)
