"""Validation of agent heartbeats (`POST /api/v1/heartbeat/<server>`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.config import Server

RATIOS = ("cpu_usage_ratio", "memory_usage_ratio", "swap_usage_ratio")
NUMBERS = ("load1", "boot_time_seconds")
MAX_FILESYSTEMS = 256
MAX_FACT = 128
FACTS = (
    "os",
    "os_release",
    "os_pretty_name",
    "arch",
    "hostname",
    "cpu_model",
    "cpu_cores",
    "cpu_threads",
    "memory_bytes",
)


class PushError(ValueError):
    """The heartbeat body is invalid; the message says what is wrong."""


def token_matches(expected: str, authorization: str | None) -> bool:
    """Constant-time check of `Authorization: Bearer <token>`."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(expected.encode(), authorization[7:].strip().encode())


def hash_token(token: str) -> str:
    """How a push token is stored: SHA-256 of a random 256-bit token (no salt needed:
    the token is not guessable, so a hash table of candidates is no shortcut)."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def push_authorized(server: Server, authorization: str | None) -> bool:
    """The bearer token against the stored hash (or the plain token of older inventories)."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    given = authorization[7:].strip()
    if server.push_token_hash is not None:
        return hmac.compare_digest(hash_token(given).encode(), server.push_token_hash.encode())
    if server.push_token is not None:
        return token_matches(server.push_token.reveal(), authorization)
    return False


def _number(value: Any, path: str, *, ratio: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PushError(f"{path}: expected a finite number, got {json.dumps(value)[:40]}")
    if ratio and not 0.0 <= value <= 1.0:
        raise PushError(f"{path}: a ratio must be between 0 and 1, got {value}")
    return float(value)


def parse_heartbeat(body: bytes) -> dict[str, Any] | None:
    """Parse the optional JSON body into the metrics dict (None when no metrics were sent)."""
    return parse_push(body)[0]


def parse_push(body: bytes) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """(metrics, agent) from a heartbeat body; either is None when it was not sent.

    `agent` is `{"version": ..., "facts": {...}}` flattened to label values: the agent's
    version and host facts (os, os_release, arch, hostname, cpu_model, cpu_cores,
    cpu_threads, memory_bytes), each at most MAX_FACT characters.
    """
    if not body.strip():
        return None, None
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PushError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PushError("body: expected a JSON object")
    unknown = set(data) - {"metrics", "agent"}
    if unknown:
        raise PushError(f"body.{sorted(unknown)[0]}: unknown key (allowed: agent, metrics)")
    agent = _agent(data["agent"]) if data.get("agent") is not None else None
    return _metrics(data.get("metrics")), agent


def _agent(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise PushError("agent: expected an object with version and facts")
    unknown = set(raw) - {"version", "facts"}
    if unknown:
        raise PushError(f"agent.{sorted(unknown)[0]}: unknown key (allowed: facts, version)")
    out: dict[str, str] = {"version": _fact(raw.get("version", ""), "agent.version")}
    facts = raw.get("facts") or {}
    if not isinstance(facts, dict):
        raise PushError("agent.facts: expected an object")
    for key, value in facts.items():
        if key not in FACTS:
            raise PushError(f"agent.facts.{key}: unknown fact (allowed: {', '.join(FACTS)})")
        out[key] = _fact(value, f"agent.facts.{key}")
    return out


def _fact(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PushError(f"{path}: expected a string or number")
    text = str(value)
    if len(text) > MAX_FACT or any(ord(c) < 32 for c in text):
        raise PushError(f"{path}: at most {MAX_FACT} printable characters")
    return text


def _metrics(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PushError("metrics: expected an object")
    metrics: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"metrics.{key}"
        if key in RATIOS:
            metrics[key] = _number(value, path, ratio=True)
        elif key in NUMBERS:
            metrics[key] = _number(value, path, ratio=False)
        elif key == "filesystem_usage_ratio":
            if not isinstance(value, dict) or len(value) > MAX_FILESYSTEMS:
                raise PushError(
                    f"{path}: expected an object of at most {MAX_FILESYSTEMS} "
                    "mountpoint: ratio pairs"
                )
            metrics[key] = {
                str(m): _number(v, f"{path}[{m!r}]", ratio=True) for m, v in value.items()
            }
        else:
            allowed = ", ".join((*RATIOS, *NUMBERS, "filesystem_usage_ratio"))
            raise PushError(f"{path}: unknown metric (allowed: {allowed})")
    return metrics
