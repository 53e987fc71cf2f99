"""Sending heartbeats: one POST classified, and the loop that retries with backoff."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from exporter.agent.config import AgentConfig, redact_url
from exporter.agent.host import HostMetrics, agent_version, host_facts
from stacksense_common import backoff as shared_backoff
from stacksense_common import retry_after

log = logging.getLogger("stacksense.agent")

MAX_RETRY_AFTER_SECONDS = 3600.0
ONCE_ATTEMPTS = 4


@dataclass(frozen=True)
class Outcome:
    """One send: delivered, or why not and whether an early retry makes sense."""

    ok: bool
    retry: bool = False
    retry_after: float | None = None
    message: str = ""


def send(
    session: requests.Session,
    config: AgentConfig,
    metrics: Mapping[str, Any],
    agent: Mapping[str, Any] | None = None,
) -> Outcome:
    """POST one heartbeat (with the agent's version and host facts) and classify the answer."""
    body: dict[str, Any] = {"metrics": dict(metrics)}
    if agent is not None:
        body["agent"] = dict(agent)
    try:
        resp = session.post(
            config.endpoint,
            json=body,
            headers={"Authorization": f"Bearer {config.token.reveal()}"},
            timeout=(min(5.0, config.timeout_seconds), config.timeout_seconds),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        # requests' messages carry the URL, never the headers; the URL's userinfo is redacted.
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        return Outcome(
            False,
            retry=True,
            message=f"connection to {redact_url(config.url)} {kind}: {type(exc).__name__}",
        )
    code = resp.status_code
    if 200 <= code < 300:
        return Outcome(True)
    detail = _detail(resp)
    if code == 429 or code >= 500:
        after = _retry_after(resp.headers.get("Retry-After"))
        return Outcome(
            False,
            retry=True,
            retry_after=after,
            message=f"exporter answered {code} {detail}".rstrip(),
        )
    hints = {
        400: "the exporter rejected the heartbeat body",
        401: f"the exporter rejected the token for server {config.server!r}; check the token "
        "(a new one: `stacksense servers token NAME` on the exporter's host)",
        403: f"the exporter refused heartbeats for server {config.server!r}",
        404: f"server {config.server!r} is not in the exporter's inventory (or the URL is not "
        "the exporter's)",
    }
    hint = hints.get(code, "unexpected answer")
    return Outcome(False, retry=False, message=f"{hint} ({code} {detail})".replace(" )", ")"))


def _detail(resp: requests.Response) -> str:
    text = resp.text.strip().replace("\n", " ")
    return text[:200]


def _retry_after(value: str | None) -> float | None:
    return retry_after.parse(value, cap=MAX_RETRY_AFTER_SECONDS)


def backoff(attempt: int, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry `attempt` (1-based): 1 s doubling to `cap`, with equal jitter."""
    return shared_backoff.delay(attempt, initial=min(1.0, cap), maximum=cap, rand=rand)


def next_delay(outcome: Outcome, failures: int, config: AgentConfig) -> float:
    """How long to wait after `outcome`, `failures` being the transient failures in a row."""
    if outcome.ok or not outcome.retry:
        return config.interval_seconds
    if outcome.retry_after is not None:
        return outcome.retry_after
    return backoff(failures, config.max_backoff_seconds)


def run(
    config: AgentConfig,
    stop: threading.Event,
    *,
    session: requests.Session | None = None,
    collect: Callable[[], Mapping[str, Any]] | None = None,
    sleep: Callable[[float], None] | None = None,
    once: bool = False,
) -> bool:
    """Send heartbeats until `stop` is set; return whether the last one was delivered.

    With `once`, stop after the first delivery or rejection, or after ONCE_ATTEMPTS
    transient failures (or a Retry-After longer than the backoff cap).
    """
    session = session or requests.Session()
    collect = collect or HostMetrics().collect
    # Waiting on the event lets a SIGTERM handler end the loop at once.
    wait = sleep or stop.wait
    failures, delivered = 0, False
    agent = {"version": agent_version(), "facts": host_facts()}
    while not stop.is_set():
        outcome = send(session, config, collect(), agent)
        delivered = outcome.ok
        if outcome.ok:
            if failures:
                log.info("heartbeat delivered again after %d failed attempts", failures)
            failures = 0
        elif outcome.retry:
            failures += 1
            log.warning("heartbeat not delivered (attempt %d): %s", failures, outcome.message)
        else:
            failures = 0
            log.error("heartbeat rejected: %s", outcome.message)
        delay = next_delay(outcome, failures, config)
        if once and (
            outcome.ok
            or not outcome.retry
            or failures >= ONCE_ATTEMPTS
            or delay > config.max_backoff_seconds
        ):
            return outcome.ok
        wait(delay)
    return delivered
