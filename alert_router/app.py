"""The Flask application factory."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from alert_router.api.fastpath import ENDPOINTS as INGEST_PATHS
from alert_router.api.fastpath import FastIngest
from alert_router.background import Runner
from alert_router.config import RouterConfig, load_config, parse_config
from alert_router.dispatch.dispatcher import Dispatcher
from alert_router.metrics import CountRequests, RouterMetrics
from alert_router.outbox import Outbox
from alert_router.state import NotifierFactory, RouterState, default_notifier_factory
from alert_router.store import Store

CONFIG_ENV = "STACKSENSE_ROUTER_CONFIG"


def _load(
    config: RouterConfig | Mapping[str, Any] | str | Path | None, base_dir: Path | None
) -> tuple[RouterConfig, Path | None]:
    if config is None:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise RuntimeError(f"no config: pass one to create_app or set {CONFIG_ENV}")
        config = path
    if isinstance(config, RouterConfig):
        return config, None
    if isinstance(config, (str, Path)):
        return load_config(config), Path(config)
    return parse_config(dict(config), base_dir=base_dir), None


def _open_store(cfg: RouterConfig) -> Store:
    if cfg.storage_url:
        from alert_router.store_pg import PgStore  # psycopg is imported only when used

        return PgStore(cfg.storage_url, password=cfg.storage_password)
    return Store(cfg.storage_path, synchronous=cfg.storage_synchronous)


def create_app(
    config: RouterConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    base_dir: Path | None = None,
    start_background: bool = True,
    notifier_factory: NotifierFactory | None = None,
) -> Flask:
    """Build a router app from a config (object, mapping, file path, or $STACKSENSE_ROUTER_CONFIG).

    With start_background=False no thread runs: tests drive the dispatcher and outbox by
    calling their step(now) functions.
    """
    cfg, path = _load(config, base_dir)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = _open_store(cfg)
    metrics = RouterMetrics()
    state = RouterState(cfg, path, store, metrics, notifier_factory or default_notifier_factory)
    state.notifiers = state.build_notifiers(cfg)
    state.generation = store.generation("config")
    metrics.reload_ok.set(1)
    metrics.reload_time.set(time.time())
    metrics.watch_store(lambda: state.store)
    state.dispatcher = Dispatcher(store, state.current_config, state.notifiers_for, metrics)
    state.outbox = Outbox(store, state.current_config, state.notifiers_for, metrics)
    if start_background:
        state.runner = Runner(store, state.dispatcher, state.outbox, state.follow_reloads)
        state.runner.start()
    app.extensions["stacksense"] = state

    from alert_router.api import register_blueprints
    from alert_router.auth import check_auth

    register_blueprints(app)
    app.before_request(check_auth)
    app.wsgi_app = FastIngest(app.wsgi_app, state)  # type: ignore[method-assign]
    from alert_router.console.mount import mount_console  # the web console at /console

    app.wsgi_app = mount_console(app.wsgi_app, state)  # type: ignore[method-assign]
    app.wsgi_app = CountRequests(  # type: ignore[method-assign]
        app.wsgi_app, metrics, INGEST_PATHS
    )

    @app.after_request
    def _name_handler(response: Response) -> Response:
        # CountRequests (outermost) labels the request with its route template.
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        request.environ[CountRequests.HANDLER_KEY] = rule
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        response = jsonify({"status": "error", "code": code, "error": exc.description})
        response.status_code = code
        # The exception's own headers (a 405's Allow, a 401's WWW-Authenticate), JSON body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    return app
