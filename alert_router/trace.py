"""One trace id per alert occurrence (stacksense_common.trace_id), and the stages recorded
under it.

The id is the sender's `trace_id` annotation when it set one (the rule engine does), else
derived from the label set and startsAt: a re-sent alert keeps its start (the merge keeps
the first one while it fires), so it keeps its id; a new occurrence after a resolve starts
later and gets a new one. Being derivable, a derived id is never written into the alert:
notifications (and the side-by-side comparison with Alertmanager) stay as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii as _str
from typing import Any

from alert_router.timeutil import format_time
from stacksense_common.trace_id import derive

ANNOTATION = "trace_id"
VALID = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
RETENTION = 7 * 86400.0  # trace stages kept this long (alerts are forgotten sooner)
# One trace row: (trace_id, ts, stage, outcome, fingerprint, details JSON).
TraceRow = tuple[str, float, str, str, str, str]
# json.dumps builds a new encoder per call when given options; this one is built once.
_SORTED = json.JSONEncoder(sort_keys=True).encode


def trace_of(labels: Mapping[str, str], annotations: Mapping[str, str], starts_at: float) -> str:
    """The trace id of one alert occurrence (its annotation was validated at ingest)."""
    given = annotations.get(ANNOTATION)
    return given if given else derive(labels, starts_at)


def row(
    trace_id: str, ts: float, stage: str, outcome: str, fingerprint: str, **details: Any
) -> TraceRow:
    if all(type(v) is str for v in details.values()):
        # The dispatcher's stages (received, grouped, queued): json.dumps(sort_keys=True)
        # output, spelled out as above.
        text = "{" + ", ".join([f"{_str(k)}: {_str(details[k])}" for k in sorted(details)]) + "}"
    else:
        text = _SORTED(details)
    return (trace_id, ts, stage, outcome, fingerprint, text)


def log_ids(ids: Iterable[str], most: int = 5) -> str:
    """`a,b,c` for a log line's trace=, cut after `most` ids (a big group stays one line)."""
    unique = list(dict.fromkeys(ids))
    text = ",".join(unique[:most])
    return text + (f",+{len(unique) - most}" if len(unique) > most else "")


def describe(stages: list[dict[str, Any]]) -> str:
    """A trace's stages as the CLI prints them, one line each."""
    lines = []
    for stage in stages:
        details = " ".join(
            f"{k}={v}" for k, v in sorted(stage["details"].items()) if v not in (None, "")
        )
        lines.append(
            f"{format_time(stage['ts'])}  {stage['stage']:<9} {stage['outcome']:<10} "
            f"{details}".rstrip()
        )
    return "\n".join(lines)
