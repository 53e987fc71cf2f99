"""Silences: matchers with a time window, created by someone with a comment."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alert_router import limits
from alert_router.errors import InputError
from alert_router.matchers import Matcher, matches_all
from alert_router.timeutil import format_time, parse_time


@dataclass(frozen=True)
class Silence:
    """One silence; its state (pending, active, expired) depends on the clock."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def state(self, now: float) -> str:
        """pending before starts_at, expired from ends_at, active in between."""
        if now >= self.ends_at:
            return "expired"
        if now < self.starts_at:
            return "pending"
        return "active"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence is active and matches `labels`."""
        return self.state(now) == "active" and matches_all(list(self.matchers), labels)

    def to_api(self, now: float) -> dict[str, Any]:
        """The v2 API's gettableSilence."""
        return {
            "id": self.id,
            "status": {"state": self.state(now)},
            "updatedAt": format_time(self.updated_at),
            "matchers": [m.to_api() for m in self.matchers],
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }


def _matcher(raw: Any, path: str) -> Matcher:
    if not isinstance(raw, dict):
        raise InputError(f"{path}: must be an object with name, value, isRegex")
    name, value = raw.get("name"), raw.get("value")
    if not isinstance(name, str) or not isinstance(value, str):
        raise InputError(f"{path}: name and value are required strings")
    if len(value) > limits.MATCHER_VALUE_CHARS or len(name) > limits.LABEL_NAME_CHARS:
        raise InputError(
            f"{path}: longer than the limit of {limits.MATCHER_VALUE_CHARS} "
            f"characters (value) or {limits.LABEL_NAME_CHARS} (name)"
        )
    is_regex = raw.get("isRegex", False)
    is_equal = raw.get("isEqual", True)
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise InputError(f"{path}: isRegex and isEqual must be booleans")
    try:
        return Matcher.create(name, value, is_regex=is_regex, is_equal=is_equal)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def parse_postable_silence(body: Any, now: float) -> Silence:
    """Validate a v2 postableSilence (as amtool sends it) into a Silence."""
    if not isinstance(body, dict):
        raise InputError("body: must be a JSON object (postableSilence)")
    raw_matchers = body.get("matchers")
    if not isinstance(raw_matchers, list) or not raw_matchers:
        raise InputError("matchers: required, a non-empty list")
    if len(raw_matchers) > limits.MATCHERS_PER_SILENCE:
        raise InputError(
            f"matchers: {len(raw_matchers)} matchers, more than the limit of "
            f"{limits.MATCHERS_PER_SILENCE} (matchers per silence)"
        )
    matchers = tuple(_matcher(m, f"matchers[{i}]") for i, m in enumerate(raw_matchers))
    if all(m.matches({}) for m in matchers):
        raise InputError("matchers: at least one matcher must not match the empty string")
    times: dict[str, float] = {}
    for key in ("startsAt", "endsAt"):
        try:
            value = parse_time(body.get(key))  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"{key}: {exc}") from None
        if value is None:
            raise InputError(f"{key}: required")
        times[key] = value
    if times["endsAt"] <= times["startsAt"]:
        raise InputError("endsAt: must be after startsAt")
    if times["endsAt"] <= now:
        raise InputError("endsAt: is in the past")
    for key, most in (
        ("createdBy", limits.SILENCE_CREATED_BY_CHARS),
        ("comment", limits.SILENCE_COMMENT_CHARS),
    ):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise InputError(f"{key}: required, a non-empty string")
        if len(body[key]) > most:
            raise InputError(
                f"{key}: longer than the limit of {most} characters (silence {key} size)"
            )
    silence_id = body.get("id") or ""
    if not isinstance(silence_id, str):
        raise InputError("id: must be a string")
    if len(silence_id) > 64:
        raise InputError("id: longer than 64 characters (silence ids are UUIDs)")
    return Silence(
        id=silence_id or str(uuid.uuid4()),
        matchers=matchers,
        starts_at=max(times["startsAt"], now) if not silence_id else times["startsAt"],
        ends_at=times["endsAt"],
        created_by=body["createdBy"],
        comment=body["comment"],
        updated_at=now,
    )


class Silencer:
    """Answers "which active silences mute these labels?" for one snapshot of silences."""

    def __init__(self, silences: list[Silence], now: float) -> None:
        self._active = [s for s in silences if s.state(now) == "active"]
        self._now = now

    def silenced_by(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of the active silences matching `labels`."""
        return [s.id for s in self._active if matches_all(list(s.matchers), labels)]
