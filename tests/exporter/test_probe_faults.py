"""Hosts that fault below the command: a TCP peer that never speaks SSH, a shell that
prints without end. Every probe still answers 200 with a reason, within its deadline,
with bounded memory, and a healthy host beside them keeps its latency."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.exporter.harness import (
    RunningExporter,
    error_info,
    running_exporter,
    samples,
    server_entry,
    write_inventory,
)
from tests.peers.silent import SilentHost, silent_host
from tests.peers.sshd import Sshd, SshdKeys, sshd

FAIL = 'stacksense_probe_failure{{reason="{}"}}'


@pytest.fixture(scope="module")
def yes_host(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshdKeys) -> Iterator[Sshd]:
    """An sshd whose forced command prints `y` lines for ever, whatever is asked."""
    with sshd(tmp_path_factory.mktemp("yes"), ssh_keys, extra=["ForceCommand yes"]) as server:
        yield server


@pytest.fixture
def faulty(
    tmp_path: Path, ssh_server: Sshd, yes_host: Sshd
) -> Iterator[tuple[RunningExporter, SilentHost]]:
    with silent_host() as silent:
        known = tmp_path / "known_hosts"
        known.write_text(ssh_server.known_hosts_line() + yes_host.known_hosts_line())
        servers = [
            server_entry("good", ssh_server),
            server_entry("yes", yes_host),
            {"name": "silent", "host": "127.0.0.1", "port": silent.port, "user": "root"},
        ]
        inv = write_inventory(
            tmp_path / "servers.yml",
            servers,
            {"default": {"key_file": str(ssh_server.keys.client_key)}},
            known,
        )
        with running_exporter(inv) as exp:
            yield exp, silent


def test_silent_host_is_a_timeout_within_the_deadline_then_backs_off(faulty) -> None:
    exp, silent = faulty
    started = time.monotonic()
    resp = exp.probe("silent", timeout=3.0)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    values = samples(resp.text)
    assert values["stacksense_probe_success"] == 0
    assert values[FAIL.format("timeout")] == 1
    assert elapsed < 3.0, f"probe took {elapsed:.2f}s for a 3s scrape timeout"
    info = error_info(resp.text)
    assert info["reason"] == info["detail"] == "timeout"
    assert "no SSH banner" in info["message"]
    assert len(silent.accepted) == 1
    # Within the backoff the host is not contacted again: the same reason and message
    # (a stable label value), at once.
    started = time.monotonic()
    again = exp.probe("silent", timeout=3.0)
    assert time.monotonic() - started < 1.0
    assert again.status_code == 200 and samples(again.text)[FAIL.format("timeout")] == 1
    assert error_info(again.text) == info
    assert len(silent.accepted) == 1


def vm_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_endless_output_fails_at_the_cap_with_bounded_memory(faulty) -> None:
    exp, _ = faulty
    peak = [vm_rss()]
    before = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        started = time.monotonic()
        resp = exp.probe("yes", timeout=10.0)
        elapsed = time.monotonic() - started
    finally:
        done.set()
        sampler.join()
    assert resp.status_code == 200
    values = samples(resp.text)
    assert values["stacksense_probe_success"] == 0
    assert values[FAIL.format("command")] == 1
    info = error_info(resp.text)
    assert (info["reason"], info["detail"]) == ("command", "output_too_large"), info
    assert "4194304 bytes" in info["message"]
    growth = peak[0] - before
    print(f"endless output: failed after {elapsed:.2f}s, RSS grew {growth / 2**20:.1f} MiB")
    # It stops at the cap, not at the deadline, and memory grows by a few times the cap.
    assert elapsed < 9.0, f"{elapsed:.2f}s"
    assert growth < 64 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MiB"
    # The next probe meets the same limit (the connection is still usable).
    assert samples(exp.probe("yes", timeout=10.0).text)[FAIL.format("command")] == 1


def test_the_cap_is_a_module_setting(tmp_path: Path, ssh_server: Sshd, yes_host: Sshd) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(yes_host.known_hosts_line())
    inv = write_inventory(
        tmp_path / "servers.yml",
        [server_entry("yes", yes_host, module="small")],
        {"default": {"key_file": str(ssh_server.keys.client_key)}},
        known,
        modules={"small": {"max_output_bytes": 65536}},
    )
    with running_exporter(inv) as exp:
        info = error_info(exp.probe("yes", timeout=10.0).text)
    assert info["detail"] == "output_too_large" and "65536 bytes" in info["message"]


def median_latency(exp: RunningExporter, target: str, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.monotonic()
        values = exp.probe_samples(target, timeout=10.0)
        times.append(time.monotonic() - started)
        assert values["stacksense_probe_success"] == 1
    return statistics.median(times)


def test_a_healthy_host_keeps_its_latency_beside_faulty_ones(faulty) -> None:
    exp, _ = faulty
    median_latency(exp, "good", 3)  # warm the pooled connection
    baseline = median_latency(exp, "good", 40)
    stop = threading.Event()
    answers: list[int] = []

    def scrape(target: str) -> None:
        # As Prometheus would: one probe per target per interval (0.5 s here, tighter
        # than any real scrape interval).
        while not stop.is_set():
            started = time.monotonic()
            answers.append(exp.probe(target, timeout=5.0).status_code)
            stop.wait(max(0.0, 0.5 - (time.monotonic() - started)))

    threads = [threading.Thread(target=scrape, args=(t,), daemon=True) for t in ("silent", "yes")]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)  # let both faulty probes be in flight
        during = median_latency(exp, "good", 40)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    print(
        f"healthy probe median: {baseline * 1000:.1f} ms alone, "
        f"{during * 1000:.1f} ms beside a silent host and an endless printer"
    )
    assert answers and set(answers) == {200}
    assert during <= 2 * baseline, (baseline, during)


def test_probe_seconds_is_observed_on_every_probe(faulty) -> None:
    exp, _ = faulty
    exp.probe_samples("good")
    exp.probe("silent", timeout=2.0)
    metrics = samples(requests.get(f"{exp.url}/metrics", timeout=10).text)
    assert metrics["stacksense_probe_seconds_count"] == 2
    assert metrics['stacksense_probe_seconds_bucket{le="+Inf"}'] == 2
    assert metrics["stacksense_probe_seconds_sum"] > 0
