"""WSGI entry point for gunicorn: `gunicorn 'alert_router.wsgi:app'` (config from
$STACKSENSE_ROUTER_CONFIG). Run one worker process with threads (`-k gthread --threads 8`),
or several: the store's lease lets only one process dispatch and send."""

from __future__ import annotations

from alert_router.app import create_app

app = create_app()
