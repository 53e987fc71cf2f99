"""One probe: run the round-trip command, parse every collector, always report why.

Failure is a value: `stacksense_probe_success`, `stacksense_probe_duration_seconds`
and `stacksense_probe_failure{reason}` (0/1 for every reason) are always in the
output; a failed probe adds `stacksense_probe_last_error_info{reason,detail,message}`
1 (the same reason, a finer detail and one short line saying why). One broken collector sets its
`stacksense_collector_success` to 0 and never fails the others. Whatever the
host or a library does, a probe returns a result: an unexpected exception is a
failure with a reason too, logged in one line (its traceback only at debug).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import paramiko

from exporter.checks import commands, hardware, logs, services
from exporter.checks.sections import check_sections
from exporter.checks_config import Checks
from exporter.collectors import ParseError, ProbeContext
from exporter.collectors._common import cheap_sections_key, label_text
from exporter.collectors._memo import Memo
from exporter.collectors.registry import COLLECTORS
from exporter.command import build_script, completed, split_sections
from exporter.config import Module, Server
from exporter.errors import REASONS, ProbeFailure
from exporter.exposition import Family, gauge, render
from exporter.heartbeats import HeartbeatStore
from exporter.runner import Runner

log = logging.getLogger(__name__)


# Set in a target's state once a probe that used cheap sections timed out.
CHEAP_BANNED = "probe.cheap_sections_banned"
# The connection (shell) whose host facts a target's state holds.
FACTS_CONNECTION = "hw.connection"
NO_CHECKS = Checks()


@lru_cache(maxsize=256)
def script_for(
    collectors: tuple[str, ...],
    cheap: tuple[str, ...] = (),
    one_write: bool = False,
    checks: Checks = NO_CHECKS,
    host_facts: bool = False,
    no_systemd: bool = False,
) -> str:
    """The round-trip script for a set of collectors and checks (built once per variant)."""
    return build_script(
        (COLLECTORS[name] for name in collectors),
        cheap,
        one_write=one_write,
        extra=check_sections(checks, host_facts, no_systemd),
    )


def cheap_collectors(collectors: tuple[str, ...], state: dict[str, Any]) -> tuple[str, ...]:
    """The collectors whose cheap sections are safe on this target, as they last said."""
    if state.get(CHEAP_BANNED):
        return ()
    return tuple(name for name in collectors if state.get(cheap_sections_key(name)) is True)


@dataclass
class ProbeResult:
    success: bool
    text: str
    failure: ProbeFailure | None = None
    duration: float = 0.0


@dataclass(frozen=True)
class LastProbe:
    """The outcome of a server's latest probe, for the server list (`/api/v1/servers`)."""

    at: float
    success: bool
    reason: str | None = None
    detail: str | None = None
    message: str | None = None


class Prober:
    """Runs probes and keeps each target's collector state between probes."""

    def __init__(self, runner: Runner, heartbeats: HeartbeatStore) -> None:
        self.runner = runner
        self.heartbeats = heartbeats
        self._states: dict[str, dict[str, Any]] = {}
        self._states_lock = threading.Lock()
        self._last: dict[str, LastProbe] = {}

    def _state(self, target: str) -> dict[str, Any]:
        with self._states_lock:
            return self._states.setdefault(target, {})

    def forget_except(self, servers: set[str]) -> None:
        """Drop the collector state of servers that left the inventory (after a reload)."""
        with self._states_lock:
            for name in [n for n in self._states if n not in servers]:
                del self._states[name]
            self._last = {n: v for n, v in self._last.items() if n in servers}

    def log_matches(self, target: str) -> dict[str, dict[str, str]]:
        """The last matching line per log file and pattern (truncated and scrubbed)."""
        with self._states_lock:
            state = self._states.get(target, {})
        last: dict[str, dict[str, str]] = state.get("logs.last_match", {})
        return {file: dict(per) for file, per in last.items()}

    def last_probes(self) -> dict[str, LastProbe]:
        with self._states_lock:
            return dict(self._last)

    def state_names(self) -> set[str]:
        with self._states_lock:
            return set(self._states)

    def probe(
        self, server: Server, module: Module, timeout: float, checks: Checks = NO_CHECKS
    ) -> ProbeResult:
        started = time.monotonic()
        deadline = started + timeout
        families: list[Family] = []
        failure: ProbeFailure | None = None
        state = self._state(server.name)
        cheap = cheap_collectors(module.collectors, state)
        try:
            connection = self.runner.connection_id(server)
            facts = connection is None or state.get(FACTS_CONNECTION) != connection
            # Facts are re-read on every new connection; so is whether systemd runs.
            no_systemd = not facts and bool(state.get(services.NO_SYSTEMD_SEEN))
            script = script_for(
                module.collectors, cheap, module.one_write, checks, facts, no_systemd
            )
            result = self.runner.run(
                server,
                script,
                deadline,
                max_output=module.max_output_bytes,
                prelude=logs.prelude(checks, state),
            )
            if not completed(result.stdout):
                raise ProbeFailure(
                    "command",
                    f"{server.name}: command output ended early (exit status {result.exit_status})",
                )
            if result.exit_status != 0:
                raise ProbeFailure(
                    "command", f"{server.name}: command exited with {result.exit_status}"
                )
            ctx = ProbeContext(server.name, now=time.time(), state=state)
            sections = split_sections(result.stdout)
            families, broken = self._collect(module, sections, ctx)
            families.extend(self._checks(checks, sections, state, facts))
            if facts:
                state[FACTS_CONNECTION] = self.runner.connection_id(server)
            if broken:
                names = ", ".join(broken[:3]) + (
                    f" and {len(broken) - 3} more" if len(broken) > 3 else ""
                )
                failure = ProbeFailure(
                    "parse", f"{server.name}: could not parse the output of collector {names}"
                )
        except ProbeFailure as exc:
            failure = exc
            if cheap and exc.reason == "timeout":
                # Maybe what the cheap snippets left unguarded hung (a mount that
                # appeared since): this target gets the guarded ones from now on.
                state[CHEAP_BANNED] = True
                log.info(
                    "probe %s timed out with cheap sections of %s: using the guarded "
                    "ones from now on",
                    server.name,
                    ", ".join(cheap),
                )
        except Exception as exc:  # noqa: BLE001 - a probe always answers with a reason
            failure = _unexpected(server, exc)
            log.debug("probe %s raised", server.name, exc_info=True)
        duration = time.monotonic() - started
        success = failure is None
        if failure is not None:
            retry = (
                f" (backoff: next attempt in {failure.retry_in:.1f}s)"
                if failure.retry_in is not None
                else ""
            )
            log.warning(
                "probe %s failed: reason=%s %s%s",
                server.name,
                failure.detail,
                failure.short_message(),
                retry,
            )
        # A probe whose command ran is a contact even if one collector choked.
        if failure is None or failure.reason == "parse":
            self.heartbeats.record(server.name, "ssh", time.time())
        reason = failure.reason if failure else None
        with self._states_lock:
            self._last[server.name] = LastProbe(
                time.time(),
                success,
                reason,
                failure.detail if failure else None,
                failure.short_message() if failure else None,
            )
        fail_fam = gauge(
            "stacksense_probe_failure", "1 for the reason the probe failed, 0 for the others."
        )
        for r in REASONS:
            fail_fam.samples.append((label_text(reason=r), 1.0 if r == reason else 0.0))
        families.append(
            gauge(
                "stacksense_probe_success", "Whether the probe succeeded.", 1.0 if success else 0.0
            )
        )
        families.append(
            gauge(
                "stacksense_probe_duration_seconds",
                "How long the probe took, in seconds.",
                duration,
            )
        )
        families.append(fail_fam)
        if failure is not None:
            families.append(
                Family(
                    "stacksense_probe_last_error_info",
                    "gauge",
                    "1 while the probe fails: its reason (as in stacksense_probe_failure), "
                    "a finer detail and a one-line message.",
                    [
                        (
                            label_text(
                                reason=failure.reason,
                                detail=failure.detail,
                                message=failure.short_message(),
                            ),
                            1.0,
                        )
                    ],
                )
            )
        return ProbeResult(success, render(families), failure, duration)

    def _checks(
        self, checks: Checks, sections: dict[str, str], state: dict[str, Any], facts: bool
    ) -> list[Family]:
        """Services, commands, logs and host facts; each guarded (garbage never fails a probe)."""
        families: list[Family] = []
        for name, build in (
            ("services", services.collect),
            ("commands", commands.collect),
            ("logs", logs.collect),
        ):
            try:
                families.extend(build(sections, checks, state))
            except Exception as exc:  # noqa: BLE001 - a check must never crash a probe
                log.warning("%s checks could not be read: %s", name, type(exc).__name__)
                log.debug("%s checks raised", name, exc_info=True)
        families.extend(hardware.collect(sections if facts else {}, state))
        return families

    def _collect(
        self, module: Module, sections: dict[str, str], ctx: ProbeContext
    ) -> tuple[list[Family], list[str]]:
        families: list[Family] = []
        ok_fam = gauge("stacksense_collector_success", "Whether a collector succeeded.")
        dur_fam = gauge(
            "stacksense_collector_duration_seconds", "Time a collector spent parsing, in seconds."
        )
        broken: list[str] = []
        memo = Memo(ctx.state, sections)
        for name in module.collectors:
            t0 = time.perf_counter()
            collector = COLLECTORS[name]
            try:
                built = memo.get(collector)
                if built is None:
                    built = collector.collect(sections, ctx)
                    memo.put(collector, built)
                families.extend(built)
                ok = True
            except KeyError as exc:
                # The host lacks the source (e.g. no /proc/pressure on old kernels):
                # that collector reports 0, the probe itself is fine.
                log.debug("collector %s on %s: no source %s", name, ctx.target, exc)
                ok = False
            except ParseError as exc:
                # The probe's own failure line names the collector; the detail is for debugging.
                log.debug("collector %s on %s: %s", name, ctx.target, exc)
                ok = False
                broken.append(name)
            except Exception as exc:  # noqa: BLE001 - garbage must never crash a probe
                log.warning("collector %s on %s raised %s", name, ctx.target, type(exc).__name__)
                log.debug("collector %s on %s raised", name, ctx.target, exc_info=True)
                ok = False
                broken.append(name)
            if not ok:
                memo.forget(collector)
            labels = label_text(collector=name)  # cached: the same strings every probe
            ok_fam.samples.append((labels, 1.0 if ok else 0.0))
            dur_fam.samples.append((labels, time.perf_counter() - t0))
        families.append(ok_fam)
        families.append(dur_fam)
        # The same values under node_exporter's names, which its dashboards chart.
        families.append(
            Family(
                "node_scrape_collector_success",
                "gauge",
                "node_exporter: Whether a collector succeeded.",
                ok_fam.samples,
            )
        )
        families.append(
            Family(
                "node_scrape_collector_duration_seconds",
                "gauge",
                "node_exporter: Duration of a collector scrape.",
                dur_fam.samples,
            )
        )
        return families, broken


def _unexpected(server: Server, exc: Exception) -> ProbeFailure:
    """A failure for an exception no handler classified (a library raising late, a bug)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProbeFailure("timeout", f"{server.name}: timed out ({type(exc).__name__})")
    if isinstance(exc, paramiko.SSHException | OSError | EOFError):
        return ProbeFailure(
            "unreachable", f"{server.name}: SSH connection failed ({type(exc).__name__})"
        )
    return ProbeFailure(
        "command", f"{server.name}: probe failed unexpectedly ({type(exc).__name__})"
    )
