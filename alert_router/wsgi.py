"""WSGI entry point for gunicorn: `gunicorn 'alert_router.wsgi:app'` (config from
$STACKSENSE_ROUTER_CONFIG). Run one worker process with threads (`-k gthread --threads 8`),
or several: the store's lease lets only one process dispatch and send.

Metrics: unless PROMETHEUS_MULTIPROC_DIR is already set (its owner then empties it before
each start), every worker writes its metrics under a directory of this gunicorn master
($STACKSENSE_ROUTER_METRICS_DIR, default the system's temporary directory), so /metrics
answers for all workers alike.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

from alert_router.cli import LOG_LEVEL_ENV
from alert_router.inbox import process_alive
from alert_router.metrics import MULTIPROC_ENV, use_multiprocess_dir
from stacksense_common.cli_flags import configure_logging

# gunicorn configures only its own loggers: without this, the router's info lines (each
# delivery with its trace ids, console logins, lease changes) would go nowhere.
configure_logging(os.environ.get(LOG_LEVEL_ENV) or "info")

if not os.environ.get(MULTIPROC_ENV):
    _base = os.environ.get("STACKSENSE_ROUTER_METRICS_DIR") or os.path.join(
        tempfile.gettempdir(), f"stacksense-router-metrics-{os.getuid()}"
    )
    # gunicorn's workers are children of its master: they share the master's directory.
    try:
        use_multiprocess_dir(
            Path(_base), os.getppid(), lambda pid: process_alive(socket.gethostname(), pid)
        )
    except OSError as exc:  # e.g. a read-only filesystem: per-worker metrics, but running
        sys.stderr.write(f"warning: metrics stay per worker, cannot use {_base}: {exc.strerror}\n")

from alert_router.app import create_app  # noqa: E402 - after the metrics directory is set

app = create_app()
