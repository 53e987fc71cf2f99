"""`stacksense-agent`: push a heartbeat (and this host's metrics) to the exporter.

For hosts the exporter cannot reach over SSH. It runs anywhere psutil does
(Linux, macOS, Windows). Delivery: every `interval` seconds; transient failures
(connection errors, timeouts, 5xx, 429) are retried with capped exponential
backoff and jitter, honouring Retry-After; a rejection (400, 401, 403, 404) is
not retried early — it is logged with what to fix and tried again at the
normal interval, since the exporter's inventory or token may be fixed later.
The token never appears in logs or errors.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
import requests
import yaml

from stacksense_common import backoff as shared_backoff
from stacksense_common import retry_after

log = logging.getLogger("stacksense.agent")

FILE_KEYS = {"url", "server", "token", "token_file", "interval_seconds", "timeout_seconds",
             "max_backoff_seconds"}
ENV = {"url": "STACKSENSE_URL", "server": "STACKSENSE_SERVER", "token": "STACKSENSE_TOKEN",
       "token_file": "STACKSENSE_TOKEN_FILE", "interval_seconds": "STACKSENSE_INTERVAL"}
MAX_RETRY_AFTER_SECONDS = 3600.0
ONCE_ATTEMPTS = 4


class AgentConfigError(ValueError):
    """The agent's configuration is unusable; the message names the setting."""


@dataclass(frozen=True)
class AgentConfig:
    """Where to send, as whom, and how often. The token is excluded from repr."""

    url: str
    server: str
    token: str = field(repr=False)
    interval_seconds: float = 30.0
    timeout_seconds: float = 10.0
    max_backoff_seconds: float = 60.0

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/api/v1/heartbeat/{quote(self.server, safe='')}"


def load_config(
    file: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> AgentConfig:
    """Merge file < environment < flags, validate, and read the token file."""
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            data = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise AgentConfigError(f"{file}: cannot read agent config: {exc}") from None
        if not isinstance(data, dict):
            raise AgentConfigError(f"{file}: expected a mapping of settings")
        for key in data:
            if key not in FILE_KEYS:
                raise AgentConfigError(
                    f"{file}: {key}: unknown key (allowed: {', '.join(sorted(FILE_KEYS))})")
        raw.update(data)
    for key, var in ENV.items():
        if env.get(var):
            # A token given by the environment replaces a token file from the file, and so on.
            if key in ("token", "token_file"):
                raw.pop("token", None)
                raw.pop("token_file", None)
            raw[key] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if raw.get("token_file") and overrides.get("token_file"):
        raw.pop("token", None)
    return _validate(raw)


def _validate(raw: Mapping[str, Any]) -> AgentConfig:
    for key in ("url", "server"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise AgentConfigError(f"{key}: required (flag --{key}, {ENV[key]} or `{key}:`)")
    url = raw["url"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentConfigError(f"url: expected http(s)://host[:port], got {redact_url(url)!r}")
    if raw.get("token") and raw.get("token_file"):
        raise AgentConfigError("token, token_file: give only one")
    token = raw.get("token")
    if raw.get("token_file"):
        try:
            token = Path(str(raw["token_file"])).read_text().strip()
        except OSError as exc:
            raise AgentConfigError(
                f"token_file: cannot read {raw['token_file']}: {exc.strerror}") from None
    if not isinstance(token, str) or not token:
        raise AgentConfigError(f"token: required ({ENV['token']}, {ENV['token_file']}, "
                               "--token-file or `token_file:`)")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise AgentConfigError("token: must not contain whitespace or control characters")
    numbers = {}
    for key, default, low in (("interval_seconds", 30.0, 1.0), ("timeout_seconds", 10.0, 0.1),
                              ("max_backoff_seconds", 60.0, 1.0)):
        value = raw.get(key, default)
        try:
            numbers[key] = float(value)
        except (TypeError, ValueError):
            raise AgentConfigError(f"{key}: expected a number, got {value!r}") from None
        if not low <= numbers[key] <= 86400:
            raise AgentConfigError(f"{key}: must be between {low:g} and 86400, got {value!r}")
    return AgentConfig(url=url, server=raw["server"].strip(), token=token, **numbers)


def redact_url(url: str) -> str:
    """The URL without any user:password part, for logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"<redacted>@{netloc}"))


class HostMetrics:
    """This host's figures as the push API names them (psutil, so any OS)."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # primes the counter the next call measures from
        self._primed_at = time.monotonic()

    def collect(self) -> dict[str, Any]:
        # Right after priming the measured span is too short to mean anything: sample briefly.
        blocking = 0.25 if time.monotonic() - self._primed_at < 0.1 else None
        cpu = psutil.cpu_percent(interval=blocking)
        self._primed_at = -1e9
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        metrics: dict[str, Any] = {
            "cpu_usage_ratio": _ratio(cpu / 100.0),
            "memory_usage_ratio": _ratio((memory.total - memory.available) / memory.total),
            "swap_usage_ratio": _ratio(swap.used / swap.total) if swap.total else 0.0,
            "boot_time_seconds": float(psutil.boot_time()),
            "filesystem_usage_ratio": filesystem_ratios(),
        }
        if hasattr(os, "getloadavg"):  # not on Windows
            metrics["load1"] = os.getloadavg()[0]
        return metrics


def agent_version() -> str:
    try:
        return importlib.metadata.version("stacksense")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def host_facts() -> dict[str, Any]:
    """What the exporter shows as stacksense_agent_info (read once; they do not change)."""
    facts: dict[str, Any] = {
        "os": platform.system(), "os_release": platform.release(),
        "arch": platform.machine(), "hostname": socket.gethostname(),
        "cpu_threads": psutil.cpu_count() or 0,
        "cpu_cores": psutil.cpu_count(logical=False) or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "cpu_model": _cpu_model(), "os_pretty_name": _pretty_name(),
    }
    return {k: (v[:128] if isinstance(v, str) else v) for k, v in facts.items()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def _pretty_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def filesystem_ratios() -> dict[str, float]:
    """Used / (used + available) per mounted filesystem, as df computes Use%."""
    out: dict[str, float] = {}
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:  # e.g. an empty CD drive on Windows, a stale network mount
            continue
        if usage.used + usage.free > 0:
            out[part.mountpoint] = _ratio(usage.used / (usage.used + usage.free))
    return out


def _ratio(value: float) -> float:
    return min(1.0, max(0.0, round(value, 6)))


@dataclass(frozen=True)
class Outcome:
    """One send: delivered, or why not and whether an early retry makes sense."""

    ok: bool
    retry: bool = False
    retry_after: float | None = None
    message: str = ""


def send(session: requests.Session, config: AgentConfig, metrics: Mapping[str, Any],
         agent: Mapping[str, Any] | None = None) -> Outcome:
    """POST one heartbeat (with the agent's version and host facts) and classify the answer."""
    body: dict[str, Any] = {"metrics": dict(metrics)}
    if agent is not None:
        body["agent"] = dict(agent)
    try:
        resp = session.post(
            config.endpoint, json=body,
            headers={"Authorization": f"Bearer {config.token}"},
            timeout=(min(5.0, config.timeout_seconds), config.timeout_seconds),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        # requests' messages carry the URL, never the headers; the URL's userinfo is redacted.
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        return Outcome(False, retry=True, message=f"connection to {redact_url(config.url)} {kind}: "
                       f"{type(exc).__name__}")
    code = resp.status_code
    if 200 <= code < 300:
        return Outcome(True)
    detail = _detail(resp)
    if code == 429 or code >= 500:
        after = _retry_after(resp.headers.get("Retry-After"))
        return Outcome(False, retry=True, retry_after=after,
                       message=f"exporter answered {code} {detail}".rstrip())
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
        if once and (outcome.ok or not outcome.retry or failures >= ONCE_ATTEMPTS
                     or delay > config.max_backoff_seconds):
            return outcome.ok
        wait(delay)
    return delivered


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stacksense-agent", description="Push heartbeats and host metrics to StackSense.",
        epilog="The token is read from STACKSENSE_TOKEN, STACKSENSE_TOKEN_FILE, --token-file or "
               "the config file; there is deliberately no --token flag (it would show in ps).")
    parser.add_argument("--config", type=Path, help="YAML file with url, server, token_file, ...")
    parser.add_argument("--url", help="exporter base URL, e.g. http://monitor:9816")
    parser.add_argument("--server", help="this server's name in the inventory")
    parser.add_argument("--token-file", help="file holding this server's push token")
    parser.add_argument("--interval", type=float, dest="interval_seconds",
                        help="seconds between heartbeats (default 30)")
    parser.add_argument("--timeout", type=float, dest="timeout_seconds",
                        help="HTTP timeout in seconds (default 10)")
    parser.add_argument("--once", action="store_true",
                        help="send one heartbeat (retrying transient errors) and exit 0/1")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `stacksense-agent` (and `stacksense agent`)."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # urllib3 logs every retry with the full URL at debug; keep its noise out of ours.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    overrides = {k: getattr(args, k) for k in
                 ("url", "server", "token_file", "interval_seconds", "timeout_seconds")}
    try:
        config = load_config(args.config, os.environ, overrides)
    except AgentConfigError as exc:
        print(f"stacksense-agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    if args.once:
        # Cron-friendly: a few quick retries, never the full backoff cap.
        config = replace(config, max_backoff_seconds=min(config.max_backoff_seconds, 8.0))
        return 0 if run(config, stop, once=True) else 1
    _stop_on_signals(stop)
    log.info("sending heartbeats for %s to %s every %gs", config.server,
             redact_url(config.url), config.interval_seconds)
    run(config, stop)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    for name in ("SIGTERM", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())


if __name__ == "__main__":
    sys.exit(main())
