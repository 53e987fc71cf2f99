"""Diagnostics and findings from the exporter, fetched once per group, never late.

Config (top level) and a per-route switch::

    diagnostics:
      exporter_url: http://exporter:9816
      timeout: 5s            # bound on how late a notification may be because of it
      token_file: /etc/stacksense/exporter-api-token   # if the exporter wants one
    route:
      routes:
        - matchers: [severity="critical"]
          diagnostics: true  # inherited by child routes

Why a background fetch started when the alert joins its group: the group's
group_wait (30 s by default) usually covers the whole diagnostic run, so the
first notification carries it without waiting at all. A group whose fetch is
still running when it is due is held back (outside any store transaction, so the
other groups flush meanwhile) until the fetch answers or `timeout` after it
started has passed; a fetch still running then (a hung host) is left to finish
for later notifications and this one says it was sent without diagnostics.
Results are cached per (group, server) for as long as the group lives (bounded
by MAX_CACHED).

The exporter computes the findings (exporter.recommend) so that the router,
the CLI and the exporter's API show the same ones; the router keeps only the
findings and a few facts of each report, cut to MAX_TEXT characters per line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from alert_router.errors import ConfigError
from alert_router.timeutil import parse_duration
from stacksense_common.config import check_keys  # lists the allowed keys

log = logging.getLogger(__name__)

MAX_SERVERS_PER_GROUP = 3
MAX_CACHED = 1000
MAX_FINDINGS = 6
MAX_TEXT = 300
KEYS = {"exporter_url", "timeout", "token_file"}


@dataclass(frozen=True)
class DiagnosticsConfig:
    exporter_url: str
    timeout: float = 5.0
    token_file: Path | None = None


def parse_diagnostics(raw: Any, base: Path) -> DiagnosticsConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("diagnostics", "must be a mapping with exporter_url")
    check_keys(raw, "diagnostics", KEYS)
    url = raw.get("exporter_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("diagnostics.exporter_url", "required: the exporter's http(s) URL")
    try:
        timeout = parse_duration(raw.get("timeout", "5s"))
    except ValueError as exc:
        raise ConfigError("diagnostics.timeout", str(exc)) from None
    if not 0 < timeout <= 60:
        raise ConfigError("diagnostics.timeout", "must be between 0 and 60s")
    token = raw.get("token_file")
    if token is not None and not isinstance(token, str):
        raise ConfigError("diagnostics.token_file", "must be a path")
    return DiagnosticsConfig(
        url.rstrip("/"), timeout, (base / token) if token is not None else None
    )


def _cut(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def summarize(server: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """What a notification carries of one report: findings first, bounded."""
    findings = [
        {
            "text": _cut(f.get("text", "")),
            "action": _cut(f.get("action", "")),
            "evidence": [_cut(e) for e in (f.get("evidence") or [])[:5]],
        }
        for f in (report.get("findings") or [])[:MAX_FINDINGS]
        if isinstance(f, dict)
    ]
    return {
        "server": server,
        "complete": bool(report.get("complete")),
        "error": _cut(report["error"]) if report.get("error") else None,
        "duration_seconds": report.get("duration_seconds"),
        "findings": findings,
    }


class _Fetch:
    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: str | None = None


class DiagnosticsFetcher:
    """Per (group, server): one background request to the exporter, its result kept."""

    def __init__(
        self,
        config: Callable[[], DiagnosticsConfig | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.session = session or requests.Session()
        self.on_done: Callable[[], None] = lambda: None  # a fetch answered or failed
        self._fetches: dict[tuple[str, str], _Fetch] = {}
        self._lock = threading.Lock()

    def prefetch(self, group_key: str, labels: Mapping[str, str]) -> None:
        """Start fetching diagnostics for the alert's server, once per group (no wait)."""
        cfg = self.config()
        server = labels.get("server")
        if cfg is None or not server:
            return
        with self._lock:
            if (group_key, server) in self._fetches:
                return
            if sum(1 for g, _ in self._fetches if g == group_key) >= MAX_SERVERS_PER_GROUP:
                return
            if len(self._fetches) >= MAX_CACHED:
                # The oldest go first: their groups have long had their first notification.
                for key in sorted(self._fetches, key=lambda k: self._fetches[k].started)[
                    : MAX_CACHED // 10
                ]:
                    del self._fetches[key]
            fetch = self._fetches[(group_key, server)] = _Fetch(self.clock())
        threading.Thread(
            target=self._run,
            args=(cfg, server, dict(labels), fetch),
            name=f"diagnostics-{server}",
            daemon=True,
        ).start()

    def _run(
        self, cfg: DiagnosticsConfig, server: str, labels: dict[str, str], fetch: _Fetch
    ) -> None:
        try:
            headers = {}
            if cfg.token_file is not None:
                headers["Authorization"] = f"Bearer {cfg.token_file.read_text().strip()}"
            # The exporter has its own deadline (10 s); this one only stops a dead exporter
            # from holding the thread forever: a late answer still serves later notifications.
            resp = self.session.post(
                f"{cfg.exporter_url}/api/v1/diagnose/{quote(server, '')}",
                json={"labels": labels},
                headers=headers,
                timeout=30,
            )
            if resp.status_code != 200:
                try:
                    why = resp.json().get("error")
                except ValueError:
                    why = resp.text[:100]
                fetch.error = _cut(f"exporter answered {resp.status_code}: {why}")
            else:
                fetch.result = summarize(server, resp.json())
        except (requests.RequestException, ValueError, OSError) as exc:
            fetch.error = f"exporter not reachable ({type(exc).__name__})"
        finally:
            if fetch.error:
                log.warning("diagnostics for %s: %s", server, fetch.error)
            fetch.done.set()
            self.on_done()

    def _fetches_for(
        self, group_key: str, servers: Mapping[str, Mapping[str, str]]
    ) -> list[tuple[str, _Fetch | None]]:
        """The fetch of each server a notification shows (`servers`: name -> an alert's
        labels); one not started in this process (a restart since, or another replica
        ingested the alert) starts now, bounded by `timeout` from now."""
        out: list[tuple[str, _Fetch | None]] = []
        for server, labels in list(servers.items())[:MAX_SERVERS_PER_GROUP]:
            with self._lock:
                fetch = self._fetches.get((group_key, server))
            if fetch is None:
                self.prefetch(group_key, labels)
                with self._lock:
                    fetch = self._fetches.get((group_key, server))
            out.append((server, fetch))
        return out

    def pending_until(
        self, group_key: str, servers: Mapping[str, Mapping[str, str]]
    ) -> float | None:
        """Until when (on `clock`) a notification of the group would wait for its
        diagnostics; None when it need not wait (every fetch done, or past its bound)."""
        cfg = self.config()
        if cfg is None:
            return None
        now = self.clock()
        until = [
            fetch.started + cfg.timeout
            for _, fetch in self._fetches_for(group_key, servers)
            if fetch is not None and not fetch.done.is_set() and fetch.started + cfg.timeout > now
        ]
        return max(until) if until else None

    def wait(self, group_key: str, servers: Mapping[str, Mapping[str, str]]) -> None:
        """Block until each fetch answered or `timeout` after it started has passed. Never
        called inside a store transaction: every other group would wait too."""
        cfg = self.config()
        if cfg is None:
            return
        for _, fetch in self._fetches_for(group_key, servers):
            if fetch is not None:
                fetch.done.wait(max(0.0, fetch.started + cfg.timeout - self.clock()))

    def collect(self, group_key: str, servers: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        """The diagnostics for a notification (`servers`: name -> an alert's labels), as
        they are now: never waits (the dispatcher waits before, see pending_until); what is
        not there is reported missing, with why."""
        cfg = self.config()
        if cfg is None:
            return {"included": False, "note": "diagnostics are not configured", "reports": []}
        reports: list[dict[str, Any]] = []
        missing: list[str] = []
        for server, fetch in self._fetches_for(group_key, servers):
            if fetch is None:
                missing.append(f"{server}: not requested")
            elif fetch.result is not None:
                reports.append(fetch.result)
            elif fetch.error is not None:
                missing.append(f"{server}: {fetch.error}")
            elif self.clock() >= fetch.started + cfg.timeout:
                missing.append(f"{server}: no answer within {cfg.timeout:g}s")
            else:  # the server joined the group after its wait was decided
                missing.append(f"{server}: no answer yet")
        note = (
            ("sent without diagnostics: " if not reports else "some diagnostics missing: ")
            + "; ".join(missing)
            if missing
            else None
        )
        return {"included": bool(reports), "note": note, "reports": reports}

    def forget_group(self, group_key: str) -> None:
        with self._lock:
            for key in [k for k in self._fetches if k[0] == group_key]:
                del self._fetches[key]


def as_text(diagnostics: Mapping[str, Any] | None) -> str:
    """Plain text for email and chat: one block per server, findings with their action."""
    if not diagnostics:
        return ""
    lines: list[str] = []
    if diagnostics.get("note"):
        lines.append(f"({diagnostics['note']})")
    for report in diagnostics.get("reports") or []:
        head = f"{report['server']}:" + ("" if report.get("complete") else " (incomplete)")
        lines.append(head)
        for f in report.get("findings") or []:
            lines.append(f"  - {f['text']}")
            lines.append(f"    -> {f['action']}")
            lines += [f"       {e}" for e in (f.get("evidence") or [])[:3]]
        if not report.get("findings"):
            lines.append("  nothing stands out")
    return "\n".join(lines)
