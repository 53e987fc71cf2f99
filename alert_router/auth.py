"""Bearer-token auth: every write needs a token; reads too when protect_reads is set."""

from __future__ import annotations

from flask import abort, current_app, request

from alert_router.api.body import is_json
from alert_router.config import AuthConfig
from alert_router.state import RouterState
from stacksense_common.ops import bearer_token_valid

# /-/reload is here because it applies the one reload rule of every service itself
# (stacksense_common.ops: a write token, or with none configured a loopback client that is
# not a web page).
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready", "/metrics", "/-/reload"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
NOT_JSON = "Content-Type: must be application/json (writes without a token accept JSON only)"
UNAUTHORIZED = "a valid 'Authorization: Bearer <token>' header is required"


def open_write_refused(method: str, content_type: str | None) -> bool:
    """Whether an unauthenticated write must be refused for its Content-Type (a 415).

    With no token required, a browser on any site could post an HTML form (or a text/plain
    "simple request") to the router; such requests cannot carry application/json without
    a CORS preflight, which the router never grants.
    """
    return method in BODY_METHODS and not is_json(content_type)


# The one bearer check of every service (constant-time, any of the tokens).
token_valid = bearer_token_valid


def refusal(
    auth: AuthConfig, method: str, path: str, content_type: str | None, authorization: str | None
) -> tuple[int, str] | None:
    """The router's one auth rule: (status, message) of a refused request, None if allowed.

    Both the Flask views (check_auth) and the ingest endpoints (api.fastpath) ask it.
    """
    if path in OPEN_PATHS:
        return None
    is_write = method in WRITE_METHODS
    if is_write and auth.allow_unauthenticated_writes and not auth.tokens:
        return (415, NOT_JSON) if open_write_refused(method, content_type) else None
    if not is_write and not auth.protect_reads:
        return None
    if not token_valid(authorization, auth.tokens):
        return 401, UNAUTHORIZED
    return None


def check_auth() -> None:
    """before_request hook: 401 (or 415) unless the request is allowed."""
    state: RouterState = current_app.extensions["stacksense"]
    refused = refusal(
        state.config.auth,
        request.method,
        request.path,
        request.headers.get("Content-Type"),
        request.headers.get("Authorization"),
    )
    if refused is not None:
        abort(refused[0], description=refused[1])
