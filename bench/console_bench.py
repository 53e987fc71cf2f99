"""The console's fleet view with 1,000 and 10,000 servers: server time and page weight.

Runs the router under gunicorn (as in production) with the console reading a fake rule
engine that reports N servers and a fake Prometheus answering every fleet query with N
series, logs in as a viewer and fetches the fleet page, its live fragment (what the
browser polls every refresh_interval) and the JSON API, several times each.

    .venv/bin/python -m bench.console_bench [--servers 1000 10000] [--runs 5]

Prints a table: median and worst server time per request (client-measured on loopback,
so it includes reading the peers) and the response size, raw and gzip-compressed.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import tempfile
import time
from pathlib import Path

import requests

from alert_router.console.fleet import CACHE_SECONDS
from alert_router.console.users import Users
from alert_router.store import Store
from tests.console.conftest import PASSWORD, TOKEN, console_config
from tests.console.fake_peers import FakePeers, fake_peers
from tests.peers.router import router

STATUSES = ("online",) * 90 + ("warning",) * 5 + ("offline", "pending", "unknown",
                                                  "suspended", "offline")


def populate(peers: FakePeers, n: int) -> None:
    peers.servers.clear()
    peers.labels.clear()
    for i in range(n):
        name = f"srv-{i:05d}.example.net"
        status = STATUSES[i % len(STATUSES)]
        peers.set(name, status, since=time.time() - i,
                  reason="refused" if status == "offline" else None,
                  reason_text="connection refused" if status == "offline" else None,
                  health={"color": "green", "score": 90.0 - i % 30, "worst": "cpu",
                          "components": {}})
        peers.labels[name] = {"env": ("prod", "staging")[i % 2], "rack": f"r{i % 40}"}


def login(session: requests.Session, url: str) -> None:
    page = session.get(f"{url}/console/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = session.post(f"{url}/console/login", timeout=30, allow_redirects=False,
                        data={"name": "bench", "password": PASSWORD, "csrf": csrf})
    resp.raise_for_status()


def measure(session: requests.Session, url: str, runs: int,
            cold: bool) -> tuple[float, float, int, int]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
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
            print(f"{'servers':>8} {'request':<34} {'median ms':>10} {'worst ms':>9} "
                  f"{'bytes':>10} {'gzip':>9}")
            for n in args.servers:
                populate(peers, n)
                for name, path, cold in (
                        ("fleet page, cold", "/console/", True),
                        ("fleet page, warm", "/console/", False),
                        ("live fragment (poll), warm", "/console/?partial=1", False),
                        ("fleet page, status=offline, cold", "/console/?status=offline", True),
                        ("JSON /console/api/fleet, cold", "/console/api/fleet", True)):
                    median, worst, size, packed = measure(session, proc.url + path, args.runs,
                                                          cold)
                    print(f"{n:>8} {name:<34} {median * 1000:>10.0f} {worst * 1000:>9.0f} "
                          f"{size:>10,} {packed:>9,}")
            started = time.perf_counter()
            peers_only = requests.get(f"{peers.url}/api/v1/servers", timeout=60)
            print(f"(reading the fake rule engine alone at {len(peers.servers)} servers: "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms, "
                  f"{len(peers_only.content):,} bytes)")


if __name__ == "__main__":
    main()
