"""A PagerDuty Events API v2 stand-in on loopback that checks events as PagerDuty documents them.

PagerDuty cannot be reached from the tests, so `pagerduty_receiver()` answers like
https://events.pagerduty.com/v2/enqueue: 202 for an accepted event, 400 "invalid event" with
the reasons for one PagerDuty would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from tests.peers.http_receiver import HttpReceiver, Reply

PATH = "/v2/enqueue"
SEVERITIES = {"critical", "error", "warning", "info"}
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255


def pagerduty_problems(path: str, headers: Mapping[str, str], body: bytes) -> list[str]:
    """What PagerDuty's Events API v2 rejects with 400 "invalid event"."""
    try:
        event = json.loads(body)
    except ValueError:
        return ["body: not JSON"]
    if not isinstance(event, dict):
        return ["body: must be a JSON object"]
    problems = []
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        problems.append("routing_key: must be a 32-character integration key")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("event_action: must be trigger, acknowledge or resolve")
    if len(event.get("dedup_key", "")) > DEDUP_KEY_MAX:
        problems.append(f"dedup_key: longer than {DEDUP_KEY_MAX} characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload") or {}
        for key in ("summary", "source", "severity"):
            if not payload.get(key):
                problems.append(f"payload.{key}: required")
        if len(payload.get("summary", "")) > SUMMARY_MAX:
            problems.append(f"payload.summary: longer than {SUMMARY_MAX} characters")
        if payload.get("severity") not in SEVERITIES:
            problems.append("payload.severity: must be critical, error, warning or info")
    elif not event.get("dedup_key"):
        problems.append("dedup_key: required to acknowledge or resolve")
    return problems


def pagerduty_receiver(path: str = PATH) -> HttpReceiver:
    """The stand-in, not started yet (use it as a context manager)."""
    return HttpReceiver(
        path=path,
        validator=pagerduty_problems,
        success=Reply(202, '{"status":"success","message":"Event processed"}'),
        invalid=lambda p: Reply(
            400,
            json.dumps(
                {"status": "invalid event", "message": "Event object is invalid", "errors": p}
            ),
        ),
    )
