"""Bearer-token auth: every write needs a token; reads too when protect_reads is set."""

from __future__ import annotations

import hmac

from flask import abort, current_app, request

from alert_router.state import RouterState

OPEN_PATHS = frozenset({"/-/healthy", "/-/ready", "/metrics"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def token_valid(header: str | None, tokens: tuple[str, ...]) -> bool:
    """Whether an Authorization header carries one of `tokens` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given, token.encode())
    return ok


def check_auth() -> None:
    """before_request hook: 401 unless the request is allowed."""
    state: RouterState = current_app.extensions["stacksense"]
    auth = state.config.auth
    if request.path in OPEN_PATHS:
        return
    is_write = request.method in WRITE_METHODS
    if is_write and auth.allow_unauthenticated_writes and not auth.tokens:
        return
    if not is_write and not auth.protect_reads:
        return
    if not token_valid(request.headers.get("Authorization"), auth.tokens):
        abort(401, description="a valid 'Authorization: Bearer <token>' header is required")
