"""The trace id of one alert occurrence, the same in the rule engine and the router.

The rule engine puts it in the `trace_id` annotation of each alert it sends; the router
derives the same for an alert that comes without one (alert_router/trace.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _str


def derive(labels: Mapping[str, str], starts_at: float) -> str:
    """24 hex digits: the start's unix second (8), then 16 of a hash of the label set and
    the start (to the millisecond, as on the wire).

    The same while the alert fires (its start is kept), a new one when it fires again after
    resolving. The time prefix keeps new ids, and so new trace rows, at the end of the
    router's trace index: a hash alone would scatter each new alert's rows over the index's
    pages, each one rewritten at commit.
    """
    # json.dumps(sorted labels, separators=(",", ":")), spelled out: the router derives one
    # per new alert, and the string escaper alone costs less than a dict encoder.
    key = "{" + ",".join([f"{_str(k)}:{_str(v)}" for k, v in sorted(labels.items())]) + "}"
    digest = hashlib.sha256(f"{key}|{starts_at:.3f}".encode("utf-8", "surrogatepass"))
    return f"{max(0, int(starts_at)):08x}{digest.hexdigest()[:16]}"
