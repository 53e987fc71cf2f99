"""Probe failures: one exception type whose `reason` is a stacksense_probe_failure label.

    ProbeFailure(reason, message)
      reason ∈ REASONS: timeout, refused, unreachable, auth, host_key, command, parse

Messages never contain secrets: they name the server, host and port and what
went wrong, nothing from the credentials.
"""

from __future__ import annotations

REASONS = ("timeout", "refused", "unreachable", "auth", "host_key", "command", "parse")


class ProbeFailure(Exception):
    """A probe failed for `reason`, one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown probe failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason
