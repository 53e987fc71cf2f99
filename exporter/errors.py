"""Probe failures: one exception type with a coarse `reason` and a finer `detail`.

    ProbeFailure(reason, message, detail=None)
      reason ∈ REASONS: timeout, refused, unreachable, auth, host_key, command, parse
      detail ∈ DETAILS: the reason itself, or a finer cause inside it:
        dns (unreachable), host_key_unknown / host_key_changed (host_key),
        output_too_large (command)

`reason` is the `stacksense_probe_failure{reason}` label; that set is stable
(dashboards and rules sum over it). `stacksense_probe_last_error_info` carries
both, as `reason` and `detail`, with the message the rule engine puts on its pages.

Messages never contain secrets: they name the server, host and port and what
went wrong, nothing from the credentials. `short_message` makes one line of at
most 200 characters, with anything that looks like a credential masked anyway.
"""

from __future__ import annotations

import re

REASONS = ("timeout", "refused", "unreachable", "auth", "host_key", "command", "parse")

# Finer causes and the reason each belongs to.
DETAILS = {
    **{r: r for r in REASONS},
    "dns": "unreachable",
    "host_key_unknown": "host_key",
    "host_key_changed": "host_key",
    "output_too_large": "command",
}

MAX_MESSAGE = 200
# Defence in depth: no message is built from a secret, but if a host or library
# ever echoes one back, these shapes are masked before the text leaves the process.
_SECRETISH = re.compile(r"(?i)\b(password|passphrase|token|secret|bearer)(\s*[=:]\s*|\s+)\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class ProbeFailure(Exception):
    """A probe failed for `reason`, one of REASONS (`detail` one of DETAILS)."""

    # Set when the pool refused to try (backoff): seconds until the next attempt.
    retry_in: float | None = None

    def __init__(self, reason: str, message: str, detail: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown probe failure reason {reason!r}")
        detail = detail or reason
        if DETAILS.get(detail) != reason:
            raise ValueError(f"probe failure detail {detail!r} does not belong to {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.detail = detail

    def short_message(self) -> str:
        return short_message(str(self))


def short_message(text: str) -> str:
    """One line, at most MAX_MESSAGE characters, credential-looking words masked."""
    line = _CONTROL.sub(" ", text).strip()
    line = _SECRETISH.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", line)
    if len(line) > MAX_MESSAGE:
        line = line[: MAX_MESSAGE - 3].rstrip() + "..."
    return line
