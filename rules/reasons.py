"""Why a server cannot be reached, in words: the exporter's probe failure reasons.

The exporter publishes `stacksense_probe_failure{server,reason} == 1` on every
failed probe, and `stacksense_probe_last_error_info{server,reason,message}`
with the last error message when it has one. Alerts carry the short reason
(an annotation, so a changing reason never splits one alert into two) and a
sentence a human reads in an email, Slack or the router's page.
"""

from __future__ import annotations

from collections.abc import Mapping

SENTENCES = {
    "timeout": "the SSH connection timed out",
    "refused": "connection refused",
    "unreachable": "host or network unreachable",
    "auth": "authentication failed",
    "host_key": "host key changed or not trusted",
    "command": "the probe command failed on the host",
    "parse": "the probe output could not be parsed",
    "scrape_failed": "the exporter could not run the probe (its /probe answered an error)",
}
NO_REASON = "no_heartbeat"
MAX_MESSAGE = 300  # an error message from the exporter is shown, never a wall of text


def sentence(reason: str) -> str:
    """A human sentence for a reason; unknown reasons are shown as they are."""
    if reason == NO_REASON:
        return "no heartbeat (the probe gave no failure reason)"
    return SENTENCES.get(reason, reason.replace("_", " "))


def reason_annotations(reason: str | None, message: str | None) -> dict[str, str]:
    """`reason`, `reason_text` and (when known) `last_error` annotations."""
    out = {"reason": reason or NO_REASON, "reason_text": sentence(reason or NO_REASON)}
    if message:
        text = " ".join(message.split())
        out["last_error"] = text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"
    return out


def pick(failures: Mapping[str, str], errors: Mapping[str, tuple[str, str]],
         server: str) -> tuple[str | None, str | None]:
    """The (reason, last error message) of one server from the cycle's answers.

    The message counts only when it is about the current reason (a last error
    from an older failure would mislead), or when no current reason is known.
    """
    reason = failures.get(server)
    err = errors.get(server)
    if err is None:
        return reason, None
    err_reason, message = err
    if reason is None:
        return err_reason or None, message
    return reason, message if err_reason in (reason, "") else None
