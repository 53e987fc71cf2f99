"""The status lifecycle against a real Prometheus scraping an exporter stand-in every second.

The stand-in serves what the exporter publishes (heartbeats, the inventory,
probe failure reasons and last errors, a filesystem ratio) with values each
test sets, and can answer 503 like a dead exporter. The engine sends its
alerts to a recording receiver, so the tests check what a human would be
paged with, cycle by cycle. Thresholds are seconds instead of minutes.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rules.conditions import parse_conditions
from rules.config import EngineConfig, Receiver
from rules.engine import CycleReport, Engine
from rules.metrics import EngineCollector
from rules.server import snapshot
from tests.peers.alert_receiver import AlertReceiver, alert_receiver
from tests.peers.prometheus import prometheus
from tests.peers.util import serving, wait_for

OFFLINE_AFTER = 5.0


@dataclass
class Host:
    heartbeat: str | float | None = "live"  # "live": just now; a number: frozen; None: never
    suspended: int = 0
    fs: float | None = None  # filesystem usage ratio, None = no series
    failure: str | None = None  # stacksense_probe_failure reason
    error: str | None = None  # stacksense_probe_last_error_info message


PROBE_EVERY = 4.0  # "probed" hosts: a probe every 4 s while Prometheus scrapes ...
PROBES_RESUME_AFTER = 8.0  # ... and the first 8 s after scrapes resume from a gap


@dataclass
class StandIn:
    hosts: dict[str, Host] = field(default_factory=dict)
    down: bool = False  # answer 503, as an exporter that cannot serve
    address: str = ""
    last_scrape: float = 0.0
    probed_at: float = 0.0
    probes_resume: float = 0.0

    def _probe(self, now: float) -> float:
        """As the real exporter: heartbeats advance only when Prometheus asks for probes,
        and after Prometheus was away its probe job needs a while to start again."""
        if now - self.last_scrape > 3.0:
            self.probes_resume = now + (PROBES_RESUME_AFTER if self.last_scrape else 0.0)
        self.last_scrape = now
        if now >= self.probes_resume and now - self.probed_at >= PROBE_EVERY:
            self.probed_at = now
        return self.probed_at

    def exposition(self) -> str:
        now = time.time()
        probed = self._probe(now)
        out = []
        for name, h in sorted(self.hosts.items()):
            out.append(f'stacksense_server_suspended{{server="{name}"}} {h.suspended}')
            if h.heartbeat is not None:
                value = (
                    now - 0.5
                    if h.heartbeat == "live"
                    else probed
                    if h.heartbeat == "probed"
                    else float(h.heartbeat)
                )
                out.append(
                    f'stacksense_last_heartbeat_timestamp_seconds{{server="{name}",'
                    f'source="ssh"}} {value:.3f}'
                )
            if h.fs is not None:
                out.append(
                    f'stacksense_filesystem_usage_ratio{{server="{name}",mountpoint="/"}} {h.fs}'
                )
            for reason in ("timeout", "refused", "auth"):
                out.append(
                    f'stacksense_probe_failure{{server="{name}",reason="{reason}"}} '
                    f"{1 if h.failure == reason else 0}"
                )
            if h.error is not None:
                out.append(
                    f'stacksense_probe_last_error_info{{server="{name}",'
                    f'reason="{h.failure}",message="{h.error}"}} 1'
                )
        return "\n".join(out) + "\n"


@contextmanager
def stand_in(**hosts: Host) -> Iterator[StandIn]:
    state = StandIn(dict(hosts))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = b"exporter down\n" if state.down else state.exposition().encode()
            self.send_response(503 if state.down else 200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.address = f"127.0.0.1:{httpd.server_address[1]}"
    with serving(httpd):
        yield state


def prom_config(exporter: StandIn) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "stacksense-exporter", "static_configs": [{"targets": [exporter.address]}]}
        ],
    }


@contextmanager
def stack(tmp: Path, **hosts: Host) -> Iterator[tuple[StandIn, str, AlertReceiver]]:
    """A fresh Prometheus (no history) scraping a stand-in, and a recording receiver."""
    with stand_in(**hosts) as exporter, alert_receiver() as receiver:
        with prometheus(tmp, prom_config(exporter)) as p:
            yield exporter, p.url, receiver


CONDITIONS = parse_conditions(
    {
        "conditions": [
            {
                "alert": "DiskFull",
                "metric": "stacksense_filesystem_usage_ratio",
                "op": ">",
                "threshold": 0.9,
                "severity": "critical",
                "annotations": {"summary": "{server} {mountpoint} is {value_percent} full"},
            },
            {"alert": "Watchdog", "expr": "vector(1)", "severity": "none"},
        ]
    },
    "test",
)


def make_engine(prom_url: str, tmp: Path, receiver: AlertReceiver, **overrides: Any) -> Engine:
    settings: dict[str, Any] = dict(
        prometheus_url=prom_url,
        state_file=tmp / "state.json",
        interval_seconds=1.0,
        prometheus_retries=0,
        prometheus_timeout_seconds=2.0,
        offline_after_seconds=OFFLINE_AFTER,
        grace_offline_after_seconds=OFFLINE_AFTER,
        pending_timeout_seconds=30.0,
        pipeline_alert_after_seconds=3.0,
        receivers=(Receiver(receiver.url),),
        anomalies_enabled=False,
    )
    settings.update(overrides)
    return Engine(EngineConfig(**settings), CONDITIONS)


class Run:
    """Cycles of one engine, every status each cycle decided kept for the assertions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reports: list[CycleReport] = []
        self.started = time.monotonic()

    def until(self, predicate: Any, what: str, timeout: float = 45.0) -> CycleReport:
        def step() -> CycleReport | None:
            report = self.engine.run_cycle()
            self.reports.append(report)
            return report if predicate(report) else None

        report = wait_for(step, timeout=timeout, interval=0.25, what=what)
        print(f"{time.monotonic() - self.started:6.1f}s  {what}")
        return report

    def seen(self, server: str) -> list[str]:
        """The statuses `server` went through, without repeats."""
        out: list[str] = []
        for r in self.reports:
            s = r.statuses.get(server)
            if s is not None and (not out or out[-1] != s):
                out.append(s)
        return out


def sent(receiver: AlertReceiver, name: str, server: str | None = None) -> list[dict[str, Any]]:
    return [
        a
        for a in receiver.alerts()
        if a["labels"].get("alertname") == name
        and (server is None or a["labels"].get("server") == server)
    ]


def firing_now(receiver: AlertReceiver, name: str, server: str | None = None) -> bool:
    """Whether the latest copy of the alert the receiver got is still firing."""
    got = sent(receiver, name, server)
    if not got:
        return False
    ends = calendar.timegm(time.strptime(got[-1]["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    return ends > time.time()


def test_cold_start_is_pending_then_a_warning_with_the_reason_never_offline(tmp_path):
    refused = Host(
        heartbeat=None,
        failure="refused",
        error="cold1: connect to 127.0.0.1:2222: Connection refused",
    )
    with stack(tmp_path, live1=Host(), cold1=refused) as (_exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver, pending_timeout_seconds=4.0))
        run.until(lambda r: r.statuses.get("live1") == "online", "live1 online")
        run.until(
            lambda r: sent(receiver, "ServerUnreachable", "cold1"),
            "ServerUnreachable for the never-reached cold1",
        )
        # Past the offline threshold too: still pending, never offline, never paged.
        run.until(
            lambda r: time.monotonic() - run.started > 4 * OFFLINE_AFTER,
            f"{4 * OFFLINE_AFTER:g}s of cycles",
        )
        assert set(run.seen("cold1")) <= {"unknown", "pending"}, run.seen("cold1")
        assert run.reports[-1].statuses["cold1"] == "pending"
        assert sent(receiver, "ServerOffline") == []
        alert = sent(receiver, "ServerUnreachable", "cold1")[-1]
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["reason"] == "refused"
        assert alert["annotations"]["summary"] == "cold1 was never reached (connection refused)"
        assert "127.0.0.1:2222: Connection refused" in alert["annotations"]["description"]
        assert alert["annotations"]["last_error"] == refused.error
        # What a console reads: GET /api/v1/servers and /metrics.
        view = snapshot(run.engine)
        assert view["servers"]["cold1"]["status"] == "pending"
        assert view["servers"]["cold1"]["reason"] == "refused"
        assert view["servers"]["cold1"]["last_error"] == refused.error
        assert view["servers"]["live1"]["reason"] is None
        assert view["pipeline"]["exporter_up"] and not view["pipeline"]["statuses_unknown"]
        registry = CollectorRegistry()
        registry.register(EngineCollector(run.engine))
        assert (
            registry.get_sample_value(
                "stacksense_server_status", {"server": "cold1", "status": "pending"}
            )
            == 1.0
        )
        assert (
            registry.get_sample_value(
                "stacksense_server_status", {"server": "cold1", "status": "offline"}
            )
            == 0.0
        )


def test_new_server_is_pending_then_online_without_any_page(tmp_path):
    with stack(tmp_path, live1=Host()) as (exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver))
        run.until(lambda r: r.statuses.get("live1") == "online", "live1 online")
        # In the inventory before its first probe (Prometheus' http_sd lags behind /sd).
        exporter.hosts["new1"] = Host(heartbeat=None)
        run.until(lambda r: r.statuses.get("new1") == "pending", "new1 pending")
        joined = time.monotonic()
        run.until(
            lambda r: time.monotonic() - joined > 2 * OFFLINE_AFTER,
            "new1 pending for twice the offline threshold",
        )
        exporter.hosts["new1"].heartbeat = "live"
        run.until(lambda r: r.statuses.get("new1") == "online", "new1 online")
        assert run.seen("new1") == ["pending", "online"]
        assert sent(receiver, "ServerOffline") == [] and sent(receiver, "ServerOnline") == []
        assert run.engine.reached >= {"live1", "new1"}


def test_restart_with_a_new_inventory_pages_no_removed_server(tmp_path):
    with stack(tmp_path, prev1=Host(), keep1=Host()) as (exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver))
        run.until(lambda r: r.statuses.get("prev1") == "online", "prev1 online")
        # The exporter restarts (down for longer than the offline threshold) with an
        # inventory without prev1, whose heartbeats stay in Prometheus' window.
        exporter.down = True
        run.until(lambda r: r.statuses.get("prev1") == "unknown", "prev1 unknown")
        time.sleep(OFFLINE_AFTER + 1)
        del exporter.hosts["prev1"]
        exporter.down = False
        run.until(
            lambda r: "prev1" not in r.statuses and r.statuses.get("keep1") == "online",
            "prev1 gone, keep1 online",
        )
        run.until(lambda r: time.monotonic() - run.started > 25, "a while after")
        assert "offline" not in run.seen("prev1") + run.seen("keep1")
        assert sent(receiver, "ServerOffline") == [] and sent(receiver, "ServerUnreachable") == []
        assert "prev1" not in run.engine.reached and "prev1" not in run.engine.history


def test_exporter_down_is_unknown_and_a_pipeline_alert_then_no_storm(tmp_path):
    with stack(tmp_path, e1=Host(), e2=Host()) as (exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver))
        run.until(lambda r: set(r.statuses.values()) == {"online"}, "e1, e2 online")
        exporter.down = True
        t0 = time.monotonic()
        run.until(lambda r: set(r.statuses.values()) == {"unknown"}, "every server unknown")
        unknown_after = time.monotonic() - t0
        report = run.until(
            lambda r: firing_now(receiver, "StackSenseExporterDown"),
            "StackSenseExporterDown delivered",
        )
        alert_after = time.monotonic() - t0
        assert report.pipeline_down and not report.exporter_up
        alert = [
            a
            for a in sent(receiver, "StackSenseExporterDown")
            if a["labels"].get("instance") == exporter.address
        ][-1]
        assert alert["labels"]["severity"] == "critical"
        assert "unknown" in alert["annotations"]["description"]
        view = snapshot(run.engine)
        assert view["servers"]["e1"]["status"] == "unknown"
        assert view["servers"]["e1"]["reason"] == "pipeline_down"
        assert view["pipeline"]["statuses_unknown"] and not view["pipeline"]["exporter_up"]
        assert [p["alertname"] for p in view["pipeline"]["problems"]] == ["StackSenseExporterDown"]
        # Down for well past the offline threshold: still no ServerOffline.
        run.until(lambda r: time.monotonic() - t0 > 3 * OFFLINE_AFTER, "exporter down a while")
        exporter.down = False
        back = time.monotonic()
        run.until(lambda r: set(r.statuses.values()) == {"online"}, "e1, e2 online again")
        run.until(
            lambda r: not firing_now(receiver, "StackSenseExporterDown"),
            "StackSenseExporterDown resolved",
        )
        run.until(lambda r: time.monotonic() - back > 2 * OFFLINE_AFTER, "after the return")
        print(f"unknown after {unknown_after:.1f}s, pipeline alert after {alert_after:.1f}s")
        assert "offline" not in run.seen("e1") + run.seen("e2")
        assert sent(receiver, "ServerOffline") == [] and sent(receiver, "ServerOnline") == []


def test_a_host_going_offline_keeps_its_condition_alert(tmp_path):
    with stack(tmp_path, disk1=Host(fs=0.95), ok1=Host(fs=0.2)) as (exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver))
        run.until(
            lambda r: (
                r.statuses.get("disk1") == "warning" and firing_now(receiver, "DiskFull", "disk1")
            ),
            "DiskFull firing, disk1 warning",
        )
        fired = sent(receiver, "DiskFull", "disk1")[-1]["startsAt"]
        # The host stops answering: its heartbeat freezes, its series vanish.
        host = exporter.hosts["disk1"]
        host.heartbeat, host.fs, host.failure = time.time(), None, "timeout"
        host.error = "disk1: SSH handshake timed out after 10s"
        run.until(lambda r: r.statuses.get("disk1") == "offline", "disk1 offline")
        run.until(lambda r: firing_now(receiver, "ServerOffline", "disk1"), "ServerOffline sent")
        run.until(lambda r: time.monotonic() - run.started > 20, "offline a while")
        assert firing_now(receiver, "DiskFull", "disk1")  # not resolved: kept as it was
        assert {a["startsAt"] for a in sent(receiver, "DiskFull", "disk1")} == {fired}
        offline = sent(receiver, "ServerOffline", "disk1")[-1]
        assert offline["annotations"]["reason"] == "timeout"
        assert offline["annotations"]["summary"] == (
            "disk1 is offline (the SSH connection timed out)"
        )
        assert "handshake timed out" in offline["annotations"]["description"]
        # Back, with the disk cleaned: fresh data resolves it, and ServerOnline is sent.
        host.heartbeat, host.fs, host.failure, host.error = "live", 0.3, None, None
        run.until(lambda r: r.statuses.get("disk1") == "online", "disk1 online")
        run.until(
            lambda r: (
                not firing_now(receiver, "DiskFull", "disk1")
                and not firing_now(receiver, "ServerOffline", "disk1")
            ),
            "DiskFull and ServerOffline resolved",
        )
        assert sent(receiver, "ServerOnline", "disk1")
        assert not [
            a
            for a in receiver.alerts()
            if a["labels"].get("server") == "ok1" and a["labels"]["alertname"] != "Watchdog"
        ]


@pytest.fixture(autouse=True)
def _show_timings(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    with capsys.disabled():
        out = capsys.readouterr().out
        if out:
            print("\n" + out, end="")


def test_prometheus_restart_pages_no_healthy_host(tmp_path):
    """Prometheus away longer than the offline threshold: when it is back, the exporter's
    `up` is 1 at once but the hosts' heartbeats advance only with the next probes."""
    threshold = 10.0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with stand_in(h1=Host(heartbeat="probed")) as exporter, alert_receiver() as receiver:
        with prometheus(tmp_path / "a", prom_config(exporter), data_dir=tmp_path / "data") as p:
            run = Run(
                make_engine(
                    p.url,
                    tmp_path,
                    receiver,
                    offline_after_seconds=threshold,
                    grace_offline_after_seconds=threshold,
                )
            )
            run.until(lambda r: r.statuses.get("h1") == "online", "h1 online")
            run.until(
                lambda r: r.observable_since is not None and r.now - r.observable_since > threshold,
                "observed for the threshold",
            )
            port = p.port
        stopped = time.monotonic()
        run.until(lambda r: r.statuses.get("h1") == "unknown", "h1 unknown, Prometheus away")
        run.until(lambda r: time.monotonic() - stopped > threshold + 5, "Prometheus away a while")
        with prometheus(
            tmp_path / "b", prom_config(exporter), data_dir=tmp_path / "data", port=port
        ):
            back = run.until(lambda r: r.ok and r.exporter_up, "Prometheus and exporter back")
            stale = back.now - exporter.probed_at
            run.until(lambda r: exporter.probed_at > back.now, "first probe after the return")
            run.until(lambda r: r.statuses.get("h1") == "online", "h1 online again")
            run.until(
                lambda r: time.monotonic() - stopped > 3 * threshold + 10,
                "a while after the return",
            )
        print(f"heartbeat {stale:.1f}s old when Prometheus came back (threshold {threshold:g}s)")
        assert stale > threshold  # what paged ServerOffline before
        assert "offline" not in run.seen("h1"), run.seen("h1")
        assert sent(receiver, "ServerOffline") == [] and sent(receiver, "ServerOnline") == []


def test_removing_an_offline_host_ends_all_its_alerts_at_once(tmp_path):
    with stack(tmp_path, gone1=Host(fs=0.95), keep1=Host()) as (exporter, url, receiver):
        run = Run(make_engine(url, tmp_path, receiver))
        run.until(lambda r: firing_now(receiver, "DiskFull", "gone1"), "DiskFull firing")
        host = exporter.hosts["gone1"]
        host.heartbeat, host.fs, host.failure = time.time(), None, "refused"
        run.until(lambda r: firing_now(receiver, "ServerOffline", "gone1"), "gone1 offline")
        del exporter.hosts["gone1"]  # removed from the inventory while offline
        removed = time.monotonic()
        run.until(
            lambda r: (
                "gone1" not in r.statuses
                and not firing_now(receiver, "ServerOffline", "gone1")
                and not firing_now(receiver, "DiskFull", "gone1")
            ),
            "gone1's status and alerts ended",
        )
        print(f"ended {time.monotonic() - removed:.1f}s after the removal")
        run.until(lambda r: time.monotonic() - removed > 3 * OFFLINE_AFTER, "a while after")
        assert not [
            a
            for a in receiver.alerts()
            if a["labels"].get("server") == "gone1"
            and a["labels"]["alertname"] not in ("ServerOffline", "DiskFull")
        ]
        assert not firing_now(receiver, "ServerOffline", "gone1")
        assert not [
            a for a in run.engine.tracker.active.values() if a.labels.get("server") == "gone1"
        ]
