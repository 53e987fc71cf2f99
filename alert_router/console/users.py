"""Console accounts (viewer / operator / admin) and failed-login records, in the router's store.

Passwords are hashed with scrypt (memory-hard, in the standard library) and a per-user
salt. The tables live beside the router's own (SQLite file or PostgreSQL database), so
every gunicorn worker and replica sees the same accounts and the same login failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from alert_router.store import Store

ROLES = ("viewer", "operator", "admin")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # scrypt's cost does not grow with length, but a bound keeps bodies small
# scrypt cost: N=2^15, r=8 uses 32 MiB per hash (OWASP's minimum is N=2^17 at
# r=8 p=1 or equivalent; 2^15 with p=1 keeps a login under gunicorn's thread budget).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
# Login throttling: failures counted over a window, per account and per client address.
FAIL_WINDOW = 15 * 60.0
MAX_FAILS_PER_USER = 5
MAX_FAILS_PER_IP = 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS console_login_failures (key TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS console_login_failures_key ON console_login_failures (key, ts);
"""


class UserError(ValueError):
    """A name, role or password that cannot be accepted (the message says why)."""


@dataclass(frozen=True)
class User:
    """One account; `stamp` changes with the password, so old sessions end with it."""

    name: str
    role: str
    password_hash: str
    created_at: float

    @property
    def stamp(self) -> str:
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def can(self, role: str) -> bool:
        """Whether this user has at least `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """scrypt$N$r$p$salt$hash with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM,
        dklen=32,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# Verified against when the account does not exist, so a wrong name costs the same time
# as a wrong password and response times do not reveal which accounts exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def generate_password() -> str:
    """A random password (20 characters from ~120 bits)."""
    return secrets.token_urlsafe(15)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError(
            "name: 1 to 64 characters of letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role: must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class Users:
    """Accounts and login failures; every SQL statement of the console lives here."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        conn: Any = self.store.conn()
        if hasattr(conn, "raw"):  # PostgreSQL (store_pg.PgConn): its types, its DDL path
            from alert_router.store_pg import pg_schema

            with self.store.tx():
                conn.raw.execute(pg_schema(SCHEMA).encode())
            return
        with self.store.write_lock:
            conn.executescript(SCHEMA)

    def get(self, name: str) -> User | None:
        row = (
            self.store.conn()
            .execute(
                "SELECT name, role, password_hash, created_at FROM console_users WHERE name = ?",
                (name,),
            )
            .fetchone()
        )
        return None if row is None else User(row[0], row[1], row[2], float(row[3]))

    def list(self) -> list[User]:
        return [
            User(r[0], r[1], r[2], float(r[3]))
            for r in self.store.conn().execute(
                "SELECT name, role, password_hash, created_at FROM console_users ORDER BY name"
            )
        ]

    def add(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        check_password(password)
        now = time.time()
        encoded = hash_password(password)
        with self.store.tx() as conn:
            if conn.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user {name!r} already exists")
            conn.execute(
                "INSERT INTO console_users (name, role, password_hash, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                (name, role, encoded, now, now),
            )
        return User(name, role, encoded, now)

    def remove(self, name: str) -> bool:
        with self.store.tx() as conn:
            cur = conn.execute("DELETE FROM console_users WHERE name = ?", (name,))
            return bool(cur.rowcount)

    def set_role(self, name: str, role: str) -> bool:
        check_role(role)
        with self.store.tx() as conn:
            cur = conn.execute(
                "UPDATE console_users SET role = ?, updated_at = ? WHERE name = ?",
                (role, time.time(), name),
            )
            return bool(cur.rowcount)

    def set_password(self, name: str, password: str) -> bool:
        check_password(password)
        encoded = hash_password(password)
        with self.store.tx() as conn:
            cur = conn.execute(
                "UPDATE console_users SET password_hash = ?, updated_at = ? WHERE name = ?",
                (encoded, time.time(), name),
            )
            return bool(cur.rowcount)

    def count_admins(self) -> int:
        return int(
            self.store.conn()
            .execute("SELECT count(*) FROM console_users WHERE role = 'admin'")
            .fetchone()[0]
        )

    # ---- login
    def throttled(self, name: str, ip: str, now: float) -> bool:
        """Whether logins for this account or from this address are refused for now."""
        since = now - FAIL_WINDOW
        conn = self.store.conn()
        fails_user = int(
            conn.execute(
                "SELECT count(*) FROM console_login_failures WHERE key = ? AND ts > ?",
                (f"user:{name}", since),
            ).fetchone()[0]
        )
        fails_ip = int(
            conn.execute(
                "SELECT count(*) FROM console_login_failures WHERE key = ? AND ts > ?",
                (f"ip:{ip}", since),
            ).fetchone()[0]
        )
        return fails_user >= MAX_FAILS_PER_USER or fails_ip >= MAX_FAILS_PER_IP

    def authenticate(self, name: str, password: str, ip: str, now: float) -> User | None:
        """The user when name and password match; a failure is recorded (name and address)."""
        user = self.get(name) if NAME_RE.match(name) else None
        ok = verify_password(password[:MAX_PASSWORD], user.password_hash if user else _DUMMY_HASH)
        with self.store.tx() as conn:
            conn.execute("DELETE FROM console_login_failures WHERE ts < ?", (now - FAIL_WINDOW,))
            if user is not None and ok:
                conn.execute("DELETE FROM console_login_failures WHERE key = ?", (f"user:{name}",))
                return user
            # Names are bounded before they become keys: the table cannot be bloated by them.
            # Two plain INSERTs: the PostgreSQL store's executemany knows only its own tables.
            for key in (f"user:{name[:64]}", f"ip:{ip[:64]}"):
                conn.execute(
                    "INSERT INTO console_login_failures (key, ts) VALUES (?, ?)", (key, now)
                )
        return None
