"""The console's fleet view with 1,000 and 10,000 servers: server time and page weight.

Runs the router under gunicorn (as in production) with the console reading a fake rule
engine that reports N servers and a fake Prometheus answering every fleet query with N
series, logs in as a viewer and fetches the fleet page, its live fragment (what the
browser polls every refresh_interval) and the JSON API, several times each.

    .venv/bin/python -m bench.console_bench [--servers 1000 10000] [--runs 5]
        [--browsers 50] [--poll-seconds 30]

Prints a table: median and worst server time per request (client-measured on loopback,
so it includes reading the peers) and the response size, raw and gzip-compressed. Then
the live updates' cost: `--browsers` sessions each polling the fleet fragment every
refresh_interval (5 s) for `--poll-seconds`, with the router's CPU (master and workers,
from /proc via psutil) and the polls' latency.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

from alert_router.console.fleet import CACHE_SECONDS
from alert_router.console.users import Users
from alert_router.store import Store
from tests.console.fake_peers import FakePeers, fake_peers
from tests.console.session import PASSWORD, TOKEN, console_config
from tests.peers.router import router

STATUSES = (
    ("online",) * 90 + ("warning",) * 5 + ("offline", "pending", "unknown", "suspended", "offline")
)


def populate(peers: FakePeers, n: int) -> None:
    peers.servers.clear()
    peers.labels.clear()
    for i in range(n):
        name = f"srv-{i:05d}.example.net"
        status = STATUSES[i % len(STATUSES)]
        peers.set(
            name,
            status,
            since=time.time() - i,
            reason="refused" if status == "offline" else None,
            reason_text="connection refused" if status == "offline" else None,
            health={"color": "green", "score": 90.0 - i % 30, "worst": "cpu", "components": {}},
        )
        peers.labels[name] = {"env": ("prod", "staging")[i % 2], "rack": f"r{i % 40}"}


def login(session: requests.Session, url: str) -> None:
    page = session.get(f"{url}/console/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = session.post(
        f"{url}/console/login",
        timeout=30,
        allow_redirects=False,
        data={"name": "bench", "password": PASSWORD, "csrf": csrf},
    )
    resp.raise_for_status()


def measure(
    session: requests.Session, url: str, runs: int, cold: bool
) -> tuple[float, float, int, int]:
    """Median and worst seconds, bytes and gzip bytes of `runs` GETs of `url`.

    cold: wait out the console's peer cache before each request, so each one reads the
    rule engine and Prometheus (a browser's first load); warm: back to back (polls of
    many browsers within one cache interval).
    """
    times = []
    body = b""
    for _ in range(runs):
        if cold:
            time.sleep(CACHE_SECONDS + 0.2)
        started = time.perf_counter()
        resp = session.get(url, timeout=120)
        times.append(time.perf_counter() - started)
        resp.raise_for_status()
        body = resp.content
    return statistics.median(times), max(times), len(body), len(gzip.compress(body, 6))


def router_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the gunicorn master and its workers."""
    master = psutil.Process(pid)
    total = 0.0
    for proc in [master, *master.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def poll_load(
    url: str, pid: int, browsers: int, seconds: float, interval: float, keep_alive: bool
) -> tuple[float, list[float], int]:
    """(router CPU as % of one core, poll latencies, failed polls) for `browsers` pollers."""
    sessions = []
    for _ in range(browsers):
        session = requests.Session()
        if not keep_alive:
            session.headers["Connection"] = "close"
        login(session, url)
        sessions.append(session)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def browser(session: requests.Session, offset: float) -> None:
        # Browsers load the page at different moments: their polls are spread over the period.
        if stop.wait(offset):
            return
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = session.get(f"{url}/console/?partial=1", timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - started)
                failures[0] += 0 if ok else 1
            stop.wait(interval)

    threads = [
        threading.Thread(target=browser, args=(s, i * interval / browsers), daemon=True)
        for i, s in enumerate(sessions)
    ]
    cpu0, wall0 = router_cpu_seconds(pid), time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(35)
    cpu = (router_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0) * 100
    return cpu, latencies, failures[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--browsers", type=int, default=50)
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    # Browsers keep connections alive; under gunicorn 27 the router's KeepAliveWorker pins
    # a thread per idle keep-alive connection (see docs/console.md), so by default each
    # poll uses a new connection. --keep-alive measures what browsers really do.
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmpdir, fake_peers() as peers:
        tmp = Path(tmpdir)
        peers.prometheus = True
        config = console_config(tmp, peers.url, peers.url, request_timeout="30s")
        store = Store(str(tmp / "router.db"))
        Users(store).add("bench", "viewer", PASSWORD)
        store.close()
        with router(tmp, config, token=TOKEN, workers=2, threads=4) as proc:
            session = requests.Session()
            login(session, proc.url)
            print(
                f"{'servers':>8} {'request':<34} {'median ms':>10} {'worst ms':>9} "
                f"{'bytes':>10} {'gzip':>9}"
            )
            for n in args.servers:
                populate(peers, n)
                for name, path, cold in (
                    ("fleet page, cold", "/console/", True),
                    ("fleet page, warm", "/console/", False),
                    ("live fragment (poll), warm", "/console/?partial=1", False),
                    ("fleet page, status=offline, cold", "/console/?status=offline", True),
                    ("JSON /console/api/fleet, cold", "/console/api/fleet", True),
                ):
                    median, worst, size, packed = measure(session, proc.url + path, args.runs, cold)
                    print(
                        f"{n:>8} {name:<34} {median * 1000:>10.0f} {worst * 1000:>9.0f} "
                        f"{size:>10,} {packed:>9,}"
                    )
            if args.browsers and proc.proc is not None:
                interval = 5.0  # console.refresh_interval's default
                for n in args.servers:
                    populate(peers, n)
                    cpu, lat, failed = poll_load(
                        proc.url,
                        proc.proc.pid,
                        args.browsers,
                        args.poll_seconds,
                        interval,
                        args.keep_alive,
                    )
                    lat.sort()
                    print(
                        f"{n:>8} servers, {args.browsers} browsers polling every "
                        f"{interval:g} s for {args.poll_seconds:g} s: router CPU "
                        f"{cpu:.0f}% of one core, {len(lat)} polls, p50 "
                        f"{lat[len(lat) // 2] * 1000:.0f} ms, p95 "
                        f"{lat[int(len(lat) * 0.95)] * 1000:.0f} ms, {failed} failed"
                        f"{'' if args.keep_alive else ' (a new connection per poll)'}"
                    )
            started = time.perf_counter()
            peers_only = requests.get(f"{peers.url}/api/v1/servers", timeout=60)
            print(
                f"(reading the fake rule engine alone at {len(peers.servers)} servers: "
                f"{(time.perf_counter() - started) * 1000:.0f} ms, "
                f"{len(peers_only.content):,} bytes)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
