"""Session key file, login state, CSRF tokens and role checks for the console's views."""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, redirect, request, session, url_for

from alert_router.console.users import User, Users

F = TypeVar("F", bound=Callable[..., Any])


def load_session_key(path: str) -> bytes:
    """The console's signing key, created (0600, 32 random bytes) on first start.

    Written to a private temporary file and hard-linked into place, so concurrent
    gunicorn workers agree on one key and none ever reads a half-written file.
    """
    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".console-key-")
        try:
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, file)
            except FileExistsError:
                pass  # another worker won the race: use its key
        finally:
            os.unlink(tmp)
    key = file.read_text().strip()
    if len(key) < 32:
        raise OSError(0, "the key is shorter than 32 characters", str(file))
    if file.stat().st_mode & 0o077:
        os.chmod(file, 0o600)  # the key signs every session: readable by the router only
    return key.encode()


def users() -> Users:
    result: Users = current_app.extensions["console_users"]
    return result


def client_ip() -> str:
    # The peer address, never X-Forwarded-For: a client could pick its own throttle key.
    return request.remote_addr or "unknown"


def start_session(user: User) -> None:
    """Log `user` in: a fresh session (no fixation) with a new CSRF token."""
    session.clear()
    session.permanent = True
    session["user"] = user.name
    session["stamp"] = user.stamp
    session["csrf"] = secrets.token_urlsafe(24)
    session["since"] = time.time()


def current_user() -> User | None:
    """The logged-in user, re-read from the store on every request.

    A removed user, a changed password or an expired login ends the session at once;
    a changed role applies at the next request.
    """
    if "console_user" in g:
        return cast(User | None, g.console_user)
    user = None
    name = session.get("user")
    if isinstance(name, str):
        found = users().get(name)
        lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
        since = session.get("since")
        if (
            found is not None
            and session.get("stamp") == found.stamp
            and isinstance(since, (int, float))
            and time.time() - since < lifetime
        ):
            user = found
    g.console_user = user
    return user


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf() -> None:
    """403 for a state-changing request without the session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    given = request.form.get("csrf", "") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, description="missing or wrong CSRF token: reload the page and try again")


def require(role: str) -> Callable[[F], F]:
    """A view for users with at least `role`; others are sent to log in (or get 403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("console.login", next=request.full_path))
                abort(401, description="log in first")
            if not user.can(role):
                abort(403, description=f"this needs the {role} role; you are {user.role}")
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path only (no open redirect)."""
    if (
        target
        and target.startswith("/console")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return url_for("console.fleet")
