"""The console as its own Flask app, mounted at /console inside the router's WSGI app.

A separate app rather than a blueprint on the router's app: the router's before_request
hook demands a bearer token for every write (and refuses form posts without one), and its
error handlers answer JSON. The console authenticates people by session cookie and CSRF
token and answers HTML, so it gets its own hooks, while sharing the router's process,
config, store and state.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from alert_router.errors import ConfigError
from alert_router.metrics import CountRequests
from alert_router.state import RouterState

PREFIX = "/console"
PACKAGE = Path(__file__).resolve().parents[1]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def session_key_path(state: RouterState) -> str:
    """console.session_key_file, or by default a file beside the router's private state.

    Beside the SQLite store (already the router's private directory), else beside the
    config file; a config given as a mapping with a PostgreSQL store (tests) falls back to
    the temporary directory, never the working directory.
    """
    cfg = state.config
    if cfg.console.session_key_file:
        return cfg.console.session_key_file
    if cfg.storage_path and cfg.storage_path != ":memory:" and not cfg.storage_url:
        return f"{cfg.storage_path}.console-key"
    if state.config_path is not None:
        return str(Path(state.config_path).resolve().parent / "console-session.key")
    return os.path.join(tempfile.gettempdir(), f"stacksense-console-{os.getuid()}.key")


def create_console(state: RouterState) -> Flask:
    """The console app for one router process (its Users table is created here)."""
    from alert_router.console import session as sess
    from alert_router.console.users import Users
    from alert_router.console.views import bp

    cfg = state.config.console
    app = Flask(
        "alert_router.console",
        template_folder=str(PACKAGE / "templates"),
        static_folder=str(PACKAGE / "static"),
        static_url_path=f"{PREFIX}/static",
    )
    key_file = session_key_path(state)
    try:
        app.secret_key = sess.load_session_key(key_file)
    except OSError as exc:
        # One line naming the key and the file, instead of a worker's boot traceback.
        raise ConfigError(
            "console.session_key_file", f"cannot create or read {key_file}: {exc.strerror}"
        ) from None
    app.config.update(
        SESSION_COOKIE_NAME="stacksense_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=cfg.secure_cookies,
        SESSION_COOKIE_PATH=PREFIX,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=cfg.session_lifetime),
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only: a silence comment is the largest field
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.extensions["stacksense"] = state
    app.extensions["console_users"] = Users(state.store)
    app.register_blueprint(bp)

    @app.after_request
    def _name_handler(response: Response) -> Response:
        # The router's request counter labels by route template; the console's routes
        # are this app's, so it names them here (an unknown path stays "unmatched").
        if request.url_rule is not None:
            request.environ[CountRequests.HANDLER_KEY] = request.url_rule.rule
        return response

    return app


class ConsoleMount:
    """Send /console and /console/... to the console app, everything else to the router."""

    def __init__(self, router: WSGIApp, console: Flask | None) -> None:
        self.router = router
        self.console = console

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.console is not None and (path == PREFIX or path.startswith(PREFIX + "/")):
            return self.console.wsgi_app(environ, start_response)  # type: ignore[no-any-return]
        return self.router(environ, start_response)


def mount_console(router: WSGIApp, state: RouterState) -> ConsoleMount:
    """`router` with the console mounted at /console (passed through when disabled)."""
    enabled = state.config.console.enabled
    return ConsoleMount(router, create_console(state) if enabled else None)
