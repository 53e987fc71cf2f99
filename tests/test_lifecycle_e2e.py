"""An operator's week, end to end: real sshd hosts, the exporter, Prometheus with `make run`'s
scrape interval and http_sd refresh, the rule engine, the router (2 workers) and a sink.

Four independent stacks run their scenario at the same time (most of each is waiting
for clocks), and every step prints its timing:

- hosts: cold start (no page); add a server (no page, online within 3 minutes); remove
  one (no page); a host dies (ServerOffline with its reason within 120 s; its firing
  condition does not resolve) and returns (resolved within 120 s); a host that accepts
  TCP and never speaks SSH and one whose shell prints without end, beside healthy hosts
  whose probe latency stays within 2x of its baseline.
- exporter: the exporter is killed (a pipeline notification within 180 s, no
  ServerOffline for healthy hosts) and restarted (recovery, no storm).
- restart: the whole stack stopped for 30 s and started again with its data (no page).
- prometheus: Prometheus stopped for 2 minutes (no page after it returns).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.peers.sshd import SshdKeys, sshd_available
from tests.peers.stack import Stack
from tests.peers.util import wait_for

pytestmark = [
    pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd"),
]

PENDING_TIMEOUT = "60s"  # the test's bound for "not reached yet" (default 5m)
PIPELINE_ALERTS = ("StackSenseExporterDown", "StackSensePrometheusUnreachable")


def probe_latency(stack: Stack, server: str, n: int = 5) -> float:
    """Median seconds of `n` direct probes of `server` through the exporter."""
    took = []
    for _ in range(n):
        started = time.monotonic()
        resp = requests.get(f"{stack.url['exporter']}/probe", params={"target": server}, timeout=30)
        took.append(time.monotonic() - started)
        assert resp.status_code == 200, resp.text[:300]
        assert "stacksense_probe_success 1" in resp.text
    return statistics.median(took)


def no_page(stack: Stack, servers: list[str], since: float) -> None:
    pages = [
        n for s in servers for n in stack.sink.notifications("ServerOffline", s, "firing", since)
    ]
    assert not pages, f"false ServerOffline pages: {[p.labels for p in pages]}"


def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never sends an SSH banner."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        sock.close()


def scenario_hosts(stack: Stack) -> None:
    stack.add_host("h1")
    stack.add_host("h2")
    stack.add_host("h4")
    stack.start()
    t = stack.mark("cold start")
    for name in ("h1", "h2", "h4"):
        # h2 has a firing warning condition, so it reads "warning" once reached.
        took = stack.wait_status(name, ("online", "warning"), timeout=150)
        stack.mark(f"{name} online ({took:.0f}s)")
    no_page(stack, ["h1", "h2", "h4"], since=t)
    busy = stack.wait_notified("H2Busy", server="h2", since=t, timeout=120)
    stack.mark("h2's condition notified")
    baseline = probe_latency(stack, "h1")
    stack.mark(f"h1 probe latency baseline {baseline * 1000:.0f} ms")

    # Add a server, two broken ones, remove one, and take h2 down, all at once.
    gen = silent_listener()
    silent_port = next(gen)
    stack.add_host("h3")
    stack.add_host("endless", extra=["ForceCommand yes"])
    stack.add_raw("silent", silent_port)
    del stack.inventory["h4"]
    stack.stop_host("h2")
    t_change = stack.mark("added h3, endless, silent; removed h4; h2 down")
    stack.reload_exporter()
    took = stack.wait_status("h3", "online", timeout=180)
    stack.mark(f"h3 online {took:.0f}s after it was added")
    wait_for(lambda: "h4" not in stack.servers(), timeout=60, interval=1, what="h4 gone")
    stack.mark("h4 gone")
    offline = stack.wait_notified("ServerOffline", server="h2", since=t_change, timeout=120)
    stack.mark(
        f"h2 ServerOffline notified after {offline.at - t_change:.0f}s "
        f"({offline.labels} {offline.annotations})"
    )
    text = " ".join([*offline.labels.values(), *offline.annotations.values()])
    assert "refused" in text, f"ServerOffline does not say why: {offline}"
    for name in ("silent", "endless"):
        assert stack.status(name) in ("pending", "warning"), (name, stack.status(name))
    unreachable = {
        n.labels.get("server"): n
        for n in stack.sink.notifications("ServerUnreachable", None, "firing", t_change)
    }
    wait_for(
        lambda: (
            {"silent", "endless"}
            <= {
                n.labels.get("server")
                for n in stack.sink.notifications("ServerUnreachable", None, "firing", t_change)
            }
        ),
        timeout=150,
        interval=1,
        what="ServerUnreachable for the two broken hosts",
    )
    unreachable = {
        n.labels.get("server"): n
        for n in stack.sink.notifications("ServerUnreachable", None, "firing", t_change)
    }
    stack.mark(
        "ServerUnreachable (warning) for silent and endless: "
        f"{ {k: v.annotations.get('description', '') for k, v in unreachable.items()} }"
    )
    assert "timeout" in " ".join(
        [*unreachable["silent"].labels.values(), *unreachable["silent"].annotations.values()]
    )
    loaded = probe_latency(stack, "h1")
    stack.mark(f"h1 probe latency beside the broken hosts {loaded * 1000:.0f} ms")
    assert loaded <= 2 * baseline + 0.05, (baseline, loaded)

    # h2's condition stays firing while h2 is offline: its series vanished, not its problem.
    assert not stack.sink.notifications("H2Busy", "h2", "resolved", busy.at), (
        "h2's condition was resolved by the host going offline"
    )
    stack.start_host("h2")
    t_back = stack.mark("h2 back")
    resolved = stack.wait_notified(
        "ServerOffline", server="h2", status="resolved", since=t_back, timeout=120
    )
    stack.mark(f"h2 ServerOffline resolved after {resolved.at - t_back:.0f}s")
    no_page(stack, ["h1", "h3", "h4", "silent", "endless"], since=t)
    gen.close()


def scenario_exporter(stack: Stack) -> None:
    stack.add_host("h1")
    stack.start()
    t = stack.mark("cold start")
    stack.wait_status("h1", "online", timeout=150)
    stack.mark("h1 online")
    stack.exporter.kill()
    t_kill = stack.mark("exporter killed")
    alert = wait_for(
        lambda: [
            n
            for name in PIPELINE_ALERTS + ("StackSenseComponentDown",)
            for n in stack.sink.notifications(name, None, "firing", t_kill)
        ],
        timeout=180,
        interval=0.5,
        what="a pipeline notification",
    )[0]
    stack.mark(
        f"pipeline notification {alert.labels.get('alertname')} after {alert.at - t_kill:.0f}s"
    )
    assert stack.status("h1") == "unknown", stack.status("h1")
    stack.exporter.start()
    t_back = stack.mark("exporter restarted")
    stack.wait_status("h1", "online", timeout=120)
    stack.mark(f"h1 online {time.monotonic() - t_back:.0f}s after the exporter returned")
    wait_for(
        lambda: stack.sink.notifications(alert.labels["alertname"], None, "resolved", t_back),
        timeout=120,
        interval=0.5,
        what="the pipeline notification resolved",
    )
    stack.mark("pipeline notification resolved")
    time.sleep(30)  # a storm would come within the offline threshold of the return
    no_page(stack, ["h1"], since=t)


def scenario_restart(stack: Stack) -> None:
    stack.add_host("h1")
    stack.start()
    t = stack.mark("cold start")
    stack.wait_status("h1", "online", timeout=150)
    stack.mark("h1 online")
    time.sleep(20)
    stack.stop_all()
    stack.mark("whole stack stopped")
    time.sleep(30)
    stack.start_all()
    t_back = stack.mark("whole stack started again with its data")
    time.sleep(75)  # longer than offline_after after the return
    stack.mark(f"h1 is {stack.status('h1')} {time.monotonic() - t_back:.0f}s after the return")
    assert stack.status("h1") == "online"
    no_page(stack, ["h1"], since=t)


def scenario_prometheus(stack: Stack) -> None:
    stack.add_host("h1")
    stack.start()
    t = stack.mark("cold start")
    stack.wait_status("h1", "online", timeout=150)
    stack.mark("h1 online")
    stack.prometheus.stop()
    stack.mark("Prometheus stopped")
    time.sleep(120)
    stack.prometheus.start()
    t_back = stack.mark("Prometheus started again")
    time.sleep(75)
    stack.mark(f"h1 is {stack.status('h1')} {time.monotonic() - t_back:.0f}s after the return")
    assert stack.status("h1") == "online"
    no_page(stack, ["h1"], since=t)


SCENARIOS: dict[str, Callable[[Stack], None]] = {
    "hosts": scenario_hosts,
    "exporter": scenario_exporter,
    "restart": scenario_restart,
    "prometheus": scenario_prometheus,
}


def test_an_operators_week(tmp_path: Path, ssh_keys: SshdKeys) -> None:
    stacks: dict[str, Stack] = {}
    for name in SCENARIOS:
        root = tmp_path / name
        root.mkdir()
        conditions = (
            [{"alert": "H2Busy", "expr": 'node_load1{server="h2"} >= 0', "severity": "warning"}]
            if name == "hosts"
            else []
        )
        stacks[name] = Stack(
            root, ssh_keys, conditions=conditions, status={"pending_timeout": PENDING_TIMEOUT}
        )
    try:
        with ThreadPoolExecutor(len(SCENARIOS)) as pool:
            futures = {name: pool.submit(SCENARIOS[name], stacks[name]) for name in SCENARIOS}
            errors = {}
            for name, future in futures.items():
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - report every scenario's failure
                    errors[name] = exc
        for name, stack in stacks.items():
            print(f"--- {name}: " + "; ".join(f"+{t:.0f}s {w}" for t, w in stack.events))
        assert not errors, "\n".join(f"{n}: {e!r}" for n, e in errors.items())
    finally:
        for stack in stacks.values():
            stack.close()
