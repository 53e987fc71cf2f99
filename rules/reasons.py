"""Why a server cannot be reached, in words: the exporter's probe failure reasons.

The exporter publishes `stacksense_probe_failure{server,reason} == 1` on every
failed probe, and `stacksense_probe_last_error_info{server,reason,detail,message}`
with a finer cause and a one-line message. Alerts carry the stable reason
(an annotation, so a changing reason never splits one alert into two), the
detail, and a sentence a human reads in an email, Slack or the router's page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SENTENCES = {
    "timeout": "the SSH connection timed out",
    "refused": "connection refused",
    "unreachable": "host or network unreachable",
    "auth": "authentication failed",
    "host_key": "host key changed or not trusted",
    "command": "the probe command failed on the host",
    "parse": "the probe output could not be parsed",
    "scrape_failed": "the exporter could not run the probe (its /probe answered an error)",
    # Finer causes (the exporter's `detail`).
    "dns": "cannot resolve the host name",
    "host_key_changed": "host key changed",
    "host_key_unknown": "host key not in known_hosts",
    "output_too_large": "the host printed more than the probe reads",
}
NO_REASON = "no_heartbeat"
MAX_MESSAGE = 300  # an error message from the exporter is shown, never a wall of text


@dataclass(frozen=True)
class Why:
    """A server's probe failure: the stable reason, a finer detail, the last message."""

    reason: str | None = None
    detail: str | None = None
    message: str | None = None


def sentence(reason: str) -> str:
    """A human sentence for a reason or detail; unknown ones are shown as they are."""
    if reason == NO_REASON:
        return "no heartbeat (the probe gave no failure reason)"
    return SENTENCES.get(reason, reason.replace("_", " "))


def reason_annotations(why: Why) -> dict[str, str]:
    """`reason`, `reason_text`, and when known `detail` and `last_error` annotations."""
    reason = why.reason or NO_REASON
    out = {"reason": reason, "reason_text": sentence(why.detail or reason)}
    if why.detail and why.detail != reason:
        out["detail"] = why.detail
    if why.message:
        text = " ".join(why.message.split())
        out["last_error"] = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
    return out


def pick(
    failures: Mapping[str, str], errors: Mapping[str, tuple[str, str, str]], server: str
) -> Why:
    """The probe failure of one server from the cycle's answers.

    The last error (reason, detail, message) counts only when it is about the current
    reason (an older failure's message would mislead), or when no reason is current.
    """
    reason = failures.get(server)
    err = errors.get(server)
    if err is None:
        return Why(reason)
    err_reason, detail, message = err
    if reason is None:
        return Why(err_reason or None, detail or None, message or None)
    if err_reason not in (reason, ""):
        return Why(reason)
    return Why(reason, detail or None, message or None)
